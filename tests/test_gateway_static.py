"""The gateway's browser pages: the console build at /console/ (caching, content types, SPA
fallback, 404 for missing assets, 503 before the build, no path escape, gzip, ETag) and the
waiting-room display at /display/{hid}/{sid}, all under a strict CSP."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.static import CONSOLE_CSP, DISPLAY_DIR, IMMUTABLE
from gateway.testing import FakeRpc
from shared.settings import Settings

pytest_plugins = ["tests.gateway_fixtures"]

INDEX = (
    '<!doctype html><html><head><script type="module" src="/console/assets/app-abc123.js">'
    '</script></head><body><div id="app"></div></body></html>'
)
APP_JS = "console.log('app');\n" * 200  # big enough to be gzipped


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "app-abc123.js").write_text(APP_JS)
    (root / "assets" / "app-abc123.css").write_text("body{margin:0}")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


async def console_client(aiohttp_client: Any, rpc: FakeRpc, root: Path) -> TestClient[Any, Any]:
    app = create_app(Settings(console_dir=root), rpc=rpc)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


def assert_strict(headers: Any) -> None:
    csp = headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ):
        assert directive in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "*" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


async def test_index_is_revalidated_and_assets_are_immutable(
    aiohttp_client: Any, rpc: FakeRpc, dist: Path
) -> None:
    client = await console_client(aiohttp_client, rpc, dist)
    index = await client.get("/console/")
    assert index.status == 200
    assert index.headers["Content-Type"] == "text/html; charset=utf-8"
    assert index.headers["Cache-Control"] == "no-cache"
    assert await index.text() == INDEX
    assert_strict(index.headers)

    js = await client.get("/console/assets/app-abc123.js")
    assert js.status == 200
    assert js.headers["Content-Type"] == "application/javascript; charset=utf-8"
    assert js.headers["Cache-Control"] == IMMUTABLE == "public, max-age=31536000, immutable"
    assert await js.text() == APP_JS
    css = await client.get("/console/assets/app-abc123.css")
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    svg = await client.get("/console/favicon.svg")
    assert svg.status == 200 and svg.headers["Content-Type"].startswith("image/svg+xml")
    assert svg.headers["Cache-Control"] == "no-cache"  # not hashed: revalidated

    bare = await client.get("/console", allow_redirects=False)
    assert bare.status == 301 and bare.headers["Location"] == "/console/"


async def test_client_routes_fall_back_to_index_but_missing_files_are_404(
    aiohttp_client: Any, rpc: FakeRpc, dist: Path
) -> None:
    client = await console_client(aiohttp_client, rpc, dist)
    for route in ("/console/board", "/console/queue", "/console/staff/", "/console/a/b"):
        resp = await client.get(route)
        assert resp.status == 200, route
        assert await resp.text() == INDEX
        assert resp.headers["Cache-Control"] == "no-cache"
    for missing in (
        "/console/assets/app-old999.js",
        "/console/assets/nothing",
        "/console/robots.txt",
    ):
        resp = await client.get(missing)
        assert resp.status == 404, missing
        assert_strict(resp.headers)
    for escape in (
        "/console/../secret.txt",
        "/console/%2e%2e/secret.txt",
        "/console/assets/..%2f..%2fsecret.txt",
    ):
        resp = await client.get(escape)
        assert "outside the build" not in await resp.text(), escape


async def test_gzip_and_etag_revalidation(aiohttp_client: Any, rpc: FakeRpc, dist: Path) -> None:
    client = await console_client(aiohttp_client, rpc, dist)
    zipped = await client.get(
        "/console/assets/app-abc123.js", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    raw = await zipped.read()
    assert gzip.decompress(raw).decode() == APP_JS and len(raw) < len(APP_JS)
    plain = await client.get(
        "/console/assets/app-abc123.js", headers={"Accept-Encoding": "identity"}
    )
    assert "Content-Encoding" not in plain.headers

    first = await client.get("/console/")
    etag = first.headers["ETag"]
    again = await client.get("/console/", headers={"If-None-Match": etag})
    assert again.status == 304
    (dist / "index.html").write_text(INDEX.replace("abc123", "def456"))  # a new build
    fresh = await client.get("/console/", headers={"If-None-Match": etag})
    assert fresh.status == 200 and "def456" in await fresh.text()
    assert fresh.headers["ETag"] != etag


async def test_missing_build_is_a_clear_503(
    aiohttp_client: Any, rpc: FakeRpc, tmp_path: Path
) -> None:
    client = await console_client(aiohttp_client, rpc, tmp_path / "never-built")
    for path in ("/console/", "/console/board", "/console/assets/x.js"):
        resp = await client.get(path)
        assert resp.status == 503, path
        assert "make console" in await resp.text()
        assert resp.headers["Content-Type"].startswith("text/html")
        assert_strict(resp.headers)
    assert (await client.get("/healthz")).status == 200  # the gateway itself is fine


async def test_display_page_and_its_files(client: TestClient[Any, Any]) -> None:
    page = await client.get("/display/h_demo/s_123")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    assert_strict(page.headers)
    html = await page.text()
    assert html == (DISPLAY_DIR / "display.html").read_text()
    # CSP-clean: no inline script or style, only its own files
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert 'src="/display/display.js"' in html and 'href="/display/display.css"' in html
    js = await client.get("/display/display.js")
    assert js.status == 200 and js.headers["Content-Type"].startswith("application/javascript")
    assert "/api/v1/display/" in await js.text()
    css = await client.get("/display/display.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert (await client.get("/display/other.js")).status == 404
    assert (await client.get("/display/display.html")).status == 404


def test_console_csp_is_the_strict_one() -> None:
    assert "style-src 'self';" in CONSOLE_CSP and "script-src 'self';" in CONSOLE_CSP
