"""The mini-program's real page code against the real system, started as `make run` starts
it (embedded store, WeChat fake, demo hospital), through `npm run test:e2e`."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.devstack import DevStack
from tests.harness import ADMIN_PASSWORD, ADMIN_USERNAME, amqp_url, create_vhost, delete_vhost

MINIPROGRAM = Path(__file__).resolve().parent.parent / "miniprogram"
pytestmark = pytest.mark.slow


def post(url: str, body: dict[str, object], token: str | None = None) -> dict[str, object]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return dict(json.loads(resp.read()))


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    vhost = create_vhost()
    base = tmp_path_factory.mktemp("miniprogram-e2e")
    env = {
        **os.environ,
        "AMQP_URL": amqp_url(vhost),
        "GUAHAO_DEMO": "1",
        "GUAHAO_ADMIN_USERNAME": ADMIN_USERNAME,
        "GUAHAO_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    for var in (
        "WECHAT_APPID",
        "WECHAT_SECRET",
        "WECHAT_API_BASE",
        "GATEWAY_PORT",
        "MONGO_URL",
        "WECHATPAY_MCHID",
    ):  # the stack's own WeChat and WeChat Pay fakes
        env.pop(var, None)
    from shared.storage.testing import free_port

    stack = DevStack(base / "data", env=env, gateway_port=free_port(), log_dir=base / "logs")
    try:
        stack.start(timeout=90)
        yield stack
    finally:
        stack.stop()
        delete_vhost(vhost)


def test_patient_and_staff_journeys_of_the_real_pages(demo_stack: DevStack) -> None:
    assert (MINIPROGRAM / "node_modules").is_dir(), "run `make test` (it runs npm ci first)"
    api = f"{demo_stack.gateway_url}/api/v1"
    admin = post(
        f"{api}/auth/staff/login", {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    )["access_token"]
    username, password = f"demo_staff_{uuid.uuid4().hex[:6]}", "demo-staff-password"
    post(
        f"{api}/admin/hospitals/h_demo/staff",
        {"username": username, "password": password},
        token=str(admin),
    )
    env = {
        **os.environ,
        "GUAHAO_GATEWAY_URL": demo_stack.gateway_url,
        "GUAHAO_WECHAT_FAKE_URL": demo_stack.wechat_url,
        "GUAHAO_WECHATPAY_FAKE_URL": demo_stack.wechatpay_url,
        "GUAHAO_STAFF_USERNAME": username,
        "GUAHAO_STAFF_PASSWORD": password,
    }
    result = subprocess.run(
        ["npm", "run", "--silent", "test:e2e"],
        cwd=MINIPROGRAM,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "skipped" not in output.lower() or "0 skipped" in output.lower(), output[-2000:]
    assert "4 passed" in output, output[-2000:]  # with the fee paid through WeChat Pay
