"""Fixtures for gateway tests without a broker: a token signer, a fake RPC that serves the
signing keys, and app clients built on them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.testing import FakeRpc, TokenSigner, fake_auth
from shared.settings import Settings

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner()


@pytest.fixture
def rpc(signer: TokenSigner) -> FakeRpc:
    return fake_auth(signer)


@pytest.fixture
def make_client(aiohttp_client: Any, rpc: FakeRpc) -> MakeClient:
    async def make(**options: Any) -> TestClient[Any, Any]:
        return await aiohttp_client(create_app(Settings(), rpc=rpc, **options))

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[Any, Any]:
    return await make_client()
