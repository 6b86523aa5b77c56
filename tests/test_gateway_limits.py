"""Token buckets, client-IP resolution and the metrics exposition, without HTTP."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.limits import (
    DEFAULT_RATES,
    Limits,
    Rate,
    TokenBuckets,
    client_ip,
    parse_networks,
    parse_rates,
    refresh_family_key,
    username_ip_key,
)
from gateway.metrics import GatewayMetrics
from gateway.routes import Route
from gateway.testing import FakeRpc
from shared.errors import RateLimited
from shared.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(Rate(2, 3), clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("a") == 0


def test_rate_limited_carries_a_whole_number_of_seconds() -> None:
    limits = Limits({"login": Rate.per_minute(10, 1)}, clock=Clock())
    limits.hit("login", "1.2.3.4")
    with pytest.raises(RateLimited) as raised:
        limits.hit("login", "1.2.3.4")
    assert raised.value.retry_after == 6
    limits.hit("login", "5.6.7.8")  # another client has its own bucket


def test_idle_buckets_are_pruned() -> None:
    clock = Clock()
    buckets = TokenBuckets(Rate(10, 10), clock=clock)
    for i in range(1000):
        buckets.take(f"client-{i}")
    clock.now += 1.0  # every bucket is full again: nothing to remember
    buckets.take("newcomer")
    assert len(buckets) == 1


def test_bucket_count_is_capped_under_a_flood_of_distinct_keys() -> None:
    buckets = TokenBuckets(Rate(1, 5), max_keys=100, clock=Clock())
    for i in range(10_000):
        buckets.take(f"spoofed-{i}")
    assert len(buckets) == 100


def test_unknown_rate_class_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        Limits().hit("no-such-class", "k")


def test_app_refuses_a_route_naming_an_undefined_rate_class() -> None:
    route = Route("POST", "/x", "svc", "x", rate="booking")
    with pytest.raises(ValueError, match="booking"):
        create_app(Settings(), rpc=FakeRpc(), routes=(route,))


def test_rates_parse_from_a_configuration_string() -> None:
    rates = parse_rates(" login=10/min:5, ip=20/s:40 ,user=3/h")
    assert rates == {"login": Rate(10 / 60, 5), "ip": Rate(20, 40), "user": Rate(3 / 3600, 3)}
    assert parse_rates("") == {}
    with pytest.raises(ValueError, match="bad rate"):
        parse_rates("login=ten/min")


TRUSTED = parse_networks(["10.0.0.0/8", "127.0.0.1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("198.51.100.7", "203.0.113.9", "198.51.100.7"),  # untrusted peer: header ignored
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.2.3", "203.0.113.9"),  # skip trusted hops
        ("10.0.0.5", "10.0.0.6, 10.0.0.7", "10.0.0.6"),  # all trusted: the left-most
        ("127.0.0.1", "garbage", "127.0.0.1"),
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
        (None, "203.0.113.9", "unknown"),
        # client → load balancer (192.168.0.0/16 not trusted here) → nginx: the LB is the
        # client unless its network is trusted too (see the two-hop case below)
        ("127.0.0.1", "203.0.113.9, 192.168.1.1", "192.168.1.1"),
    ],
)
def test_client_ip(peer: str | None, forwarded: str | None, expected: str) -> None:
    assert client_ip(peer, forwarded, TRUSTED) == expected


def test_metrics_exposition_is_well_formed() -> None:
    metrics = GatewayMetrics()
    metrics.observe_request("/api/v1/me", "GET", 200, 0.003)
    metrics.observe_request("/api/v1/me", "GET", 200, 0.2)
    metrics.observe_request("/api/v1/me", "BREW", 405, 0.001)
    metrics.observe_rpc("auth", "me", "ok", 0.02)
    text = metrics.render()
    assert text.endswith("\n")
    assert "# TYPE guahao_http_requests_total counter" in text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    requests = "guahao_http_requests_total"
    assert value(requests, route="/api/v1/me", method="GET", status="200") == 2
    assert value(requests, route="/api/v1/me", method="OTHER", status="405") == 1
    bucket = "guahao_http_request_duration_seconds_bucket"
    assert value(bucket, route="/api/v1/me", method="GET", le="0.005") == 1
    assert value(bucket, route="/api/v1/me", method="GET", le="0.25") == 2
    assert value(bucket, route="/api/v1/me", method="GET", le="+Inf") == 2
    assert (
        value("guahao_http_request_duration_seconds_count", route="/api/v1/me", method="GET") == 2
    )
    assert (
        value(
            "guahao_rpc_duration_seconds_bucket",
            service="auth",
            method="me",
            outcome="ok",
            le="0.025",
        )
        == 1
    )
    assert not [name for name, _ in samples if name.endswith("_created")]


TWO_HOPS = parse_networks(["10.251.80.0/24", "192.168.0.0/16"])


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("203.0.113.9, 192.168.1.1", "203.0.113.9"),  # client, LB (nginx is the peer)
        ("1.1.1.1, 203.0.113.9, 192.168.1.1", "203.0.113.9"),  # spoofed entry ignored
        ("203.0.113.9,192.168.1.1", "203.0.113.9"),
        (" , 203.0.113.9 , 192.168.1.1", "203.0.113.9"),
        ("not-an-ip, 192.168.1.1", "192.168.1.1"),  # garbage beyond the LB: the LB
    ],
)
def test_client_ip_through_two_trusted_hops(forwarded: str, expected: str) -> None:
    assert client_ip("10.251.80.2", forwarded, TWO_HOPS) == expected


def test_rate_keys_of_refresh_and_staff_login() -> None:
    assert refresh_family_key("fam1.secret") == refresh_family_key("fam1.other")
    assert refresh_family_key("fam1.secret") != refresh_family_key("fam2.secret")
    assert refresh_family_key("legacy-token") == "token:legacy-token"
    assert refresh_family_key(".x") == "token:.x"
    assert username_ip_key(" Admin ", "1.2.3.4") == username_ip_key("admin", "1.2.3.4")
    assert username_ip_key("admin", "1.2.3.4") != username_ip_key("admin", "1.2.3.5")


def test_default_rates_keep_the_class_names_and_a_generous_wechat_login() -> None:
    assert {"ip", "user", "login", "refresh", "book", "wechat_login"} <= set(DEFAULT_RATES)
    assert DEFAULT_RATES["wechat_login"].per_second >= 20
    assert DEFAULT_RATES["ip"].per_second >= DEFAULT_RATES["wechat_login"].per_second
