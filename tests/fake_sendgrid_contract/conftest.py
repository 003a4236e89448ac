"""The fake SendGrid app over httpx.ASGITransport, with an empty account a test fills
(`state`, `api`) or a generated one (`generated`, `generated_api`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fake_sendgrid.app import create_fake_sendgrid
from tests.fake_sendgrid.payloads import API
from tests.fake_sendgrid.state import FakeAccountState, generated_account


def client_of(state: FakeAccountState) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_fake_sendgrid(state))
    return httpx.AsyncClient(transport=transport, base_url=API)


@pytest.fixture
def state() -> FakeAccountState:
    return FakeAccountState()


@pytest.fixture
async def api(state: FakeAccountState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(state) as client:
        yield client


@pytest.fixture(scope="module")
def generated() -> FakeAccountState:
    return generated_account(contacts=10)


@pytest.fixture
async def generated_api(generated: FakeAccountState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(generated) as client:
        yield client
