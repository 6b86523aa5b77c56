"""Fixtures for gateway tests without a broker: a token signer, a fake RPC that serves the
signing keys, and app clients built on them."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.testing import Client, FakeRpc, MakeClient, TokenSigner, fake_auth
from shared.settings import Settings


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner()


@pytest.fixture
def rpc(signer: TokenSigner) -> FakeRpc:
    return fake_auth(signer)


@pytest.fixture
def make_client(aiohttp_client: AiohttpClient, rpc: FakeRpc) -> MakeClient:
    async def make(**options: Any) -> Client:
        return await aiohttp_client(create_app(Settings(), rpc=rpc, **options))

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client()
