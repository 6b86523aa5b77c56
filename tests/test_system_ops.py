"""Operations: every service process exposes its own health and metrics."""

from __future__ import annotations

import aiohttp

from shared.devstack import DevStack
from tests.harness import Api


async def test_each_service_has_healthz_and_metrics(api: Api, stack: DevStack) -> None:
    await api.request("GET", "/hospitals")  # at least one RPC handled by catalog
    async with aiohttp.ClientSession() as session:
        for service in ("auth", "catalog", "booking"):
            base = stack.ops_url(service)
            async with session.get(f"{base}/healthz") as resp:
                health = await resp.json()
                assert resp.status == 200 and health["service"] == service
                assert health["broker"] == "connected"
            async with session.get(f"{base}/metrics") as resp:
                text = await resp.text()
                assert resp.headers["Content-Type"].startswith("text/plain")
                assert "guahao_rpc_handled_total" in text
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{stack.ops_url('catalog')}/metrics") as resp:
            text = await resp.text()
    assert 'guahao_rpc_handled_total{method="list_hospitals",outcome="ok"}' in text
    assert "guahao_outbox_backlog" in text
    assert "guahao_outbox_oldest_age_seconds" in text
    assert "process_cpu_seconds_total" in text  # prometheus-client's process collector
    assert "_created" not in text
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{stack.ops_url('notify')}/metrics") as resp:
            text = await resp.text()
    assert "# TYPE guahao_event_lag_seconds histogram" in text


async def test_gateway_metrics_and_readiness(api: Api) -> None:
    ready = await api.request("GET", "/readyz")
    assert ready.status == 200
    assert set(ready.body["services"]) >= {"auth", "catalog", "booking"}
    metrics = await api.request("GET", "/metrics")
    assert "guahao_http_request_duration_seconds_bucket" in metrics.body
    assert "guahao_rpc_duration_seconds" in metrics.body
    spec = await api.request("GET", "/api/v1/openapi.json")
    assert "/api/v1/appointments" in spec.body["paths"]
