"""The browser pages the gateway serves besides the API: the staff console (`/console/`,
the Vite build of `console/`) and the waiting-room display (`/display/{hid}/{sid}`, plain
files in `gateway/display/`).

Caching: `index.html` and the display's files are `no-cache` (revalidated with their ETag,
so a new build shows at once); the console's hashed assets are `immutable` for a year.
Text files are gzipped once in memory when the client accepts it. Every page carries a
strict Content-Security-Policy: nothing inline, nothing from another origin (see
README "Web console" for why `style-src 'self'` holds with TDesign).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONSOLE_DIR = REPO_ROOT / "console" / "dist"
DISPLAY_DIR = Path(__file__).resolve().parent / "display"
CONSOLE_PREFIX = "/console"

_COMMON_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'; worker-src 'none'; "
    "manifest-src 'self'"
)
CONSOLE_CSP = _COMMON_CSP
# the TV page is meant to be shown full screen in a browser, never framed either
DISPLAY_CSP = _COMMON_CSP
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
_TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml")
_GZIP_MIN_BYTES = 1024
_TYPES = {
    ".js": "application/javascript",
    ".mjs": "application/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".woff2": "font/woff2",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
    ".map": "application/json",
}

NOT_BUILT_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>工作台尚未构建</title></head>
<body><h1>工作台尚未构建 / console not built</h1>
<p>The staff console has not been built on this machine. Run <code>make console</code>
(or <code>make run</code>, which builds it) and reload this page.</p></body></html>
"""
NOT_FOUND_PAGE = "<!doctype html><title>404</title><h1>404 Not Found</h1>\n"


@dataclass(frozen=True)
class _Loaded:
    body: bytes
    gzipped: bytes | None
    etag: str
    content_type: str


class FileCache:
    """Files read once per (path, mtime, size), with their ETag and gzip form."""

    def __init__(self) -> None:
        self._files: dict[Path, tuple[tuple[int, int], _Loaded]] = {}

    def load(self, path: Path) -> _Loaded:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._files.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        body = path.read_bytes()
        content_type = content_type_of(path)
        gzipped = None
        if len(body) >= _GZIP_MIN_BYTES and content_type.startswith(_TEXT_TYPES):
            gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        loaded = _Loaded(body, gzipped, f'"{hashlib.sha256(body).hexdigest()[:32]}"', content_type)
        self._files[path] = (stamp, loaded)
        return loaded


def content_type_of(path: Path) -> str:
    kind = _TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    kind = kind or "application/octet-stream"
    if kind.startswith("text/") or kind in (
        "application/javascript",
        "application/json",
        "image/svg+xml",
    ):
        kind += "; charset=utf-8"
    return kind


def _headers(csp: str, cache: str) -> dict[str, str]:
    return {**SECURITY_HEADERS, "Content-Security-Policy": csp, "Cache-Control": cache}


def _page(text: str, status: int, csp: str) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=_headers(csp, "no-store"),
    )


def _inside(root: Path, relative: str) -> Path | None:
    """The file `relative` names under `root`, or None (missing, a folder, or outside)."""
    if "\x00" in relative or "\\" in relative:
        return None
    candidate = (root / relative).resolve()
    try:
        candidate.relative_to(root.resolve())
    except ValueError:
        return None
    return candidate if candidate.is_file() else None


def _serve(
    request: web.Request, cache: FileCache, path: Path, *, csp: str, cache_control: str
) -> web.Response:
    loaded = cache.load(path)
    headers = _headers(csp, cache_control)
    headers["ETag"] = loaded.etag
    headers["Vary"] = "Accept-Encoding"
    if loaded.etag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers=headers)
    body = loaded.body
    if loaded.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = loaded.gzipped
        headers["Content-Encoding"] = "gzip"
    headers["Content-Type"] = loaded.content_type
    return web.Response(body=body, headers=headers)


class ConsoleSite:
    """`/console/`: files of the build, client routes answered with index.html."""

    def __init__(self, root: Path, cache: FileCache) -> None:
        self.root = root
        self.cache = cache

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(CONSOLE_PREFIX + "/")

    async def handle(self, request: web.Request) -> web.Response:
        index = self.root / "index.html"
        if not index.is_file():
            return _page(NOT_BUILT_PAGE, 503, CONSOLE_CSP)
        tail = request.match_info.get("tail", "")
        if tail and tail != "index.html":
            found = _inside(self.root, tail)
            if found is not None:
                hashed = tail.startswith("assets/")
                return _serve(
                    request,
                    self.cache,
                    found,
                    csp=CONSOLE_CSP,
                    cache_control=IMMUTABLE if hashed else NO_CACHE,
                )
            # a file that is not there (an old asset, a typo) is a 404; anything else is a
            # client route of the single-page app
            if tail.startswith("assets/") or "." in tail.rsplit("/", 1)[-1]:
                return _page(NOT_FOUND_PAGE, 404, CONSOLE_CSP)
        return _serve(request, self.cache, index, csp=CONSOLE_CSP, cache_control=NO_CACHE)


class DisplaySite:
    """`/display/{hid}/{sid}`: one static page; its script reads the ids from the URL."""

    FILES = frozenset({"display.js", "display.css", "favicon.svg"})

    def __init__(self, root: Path, cache: FileCache) -> None:
        self.root = root
        self.cache = cache

    async def page(self, request: web.Request) -> web.Response:
        return _serve(
            request, self.cache, self.root / "display.html", csp=DISPLAY_CSP, cache_control=NO_CACHE
        )

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.FILES:
            return _page(NOT_FOUND_PAGE, 404, DISPLAY_CSP)
        return _serve(
            request, self.cache, self.root / name, csp=DISPLAY_CSP, cache_control=NO_CACHE
        )


def add_static_routes(app: web.Application, console_dir: Path | None = None) -> None:
    cache = FileCache()
    console = ConsoleSite(console_dir or DEFAULT_CONSOLE_DIR, cache)
    display = DisplaySite(DISPLAY_DIR, cache)
    app.router.add_get(CONSOLE_PREFIX, console.redirect)
    app.router.add_get(CONSOLE_PREFIX + "/", console.handle)
    app.router.add_get(CONSOLE_PREFIX + "/{tail:.+}", console.handle)
    app.router.add_get("/display/{name}", display.asset)
    app.router.add_get("/display/{hid}/{sid}", display.page)
