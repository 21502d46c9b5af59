"""Fixtures of the simulator suites: a fake Telnyx API on a free port, and an SDK client on it.

One server serves the whole session (starting and stopping uvicorn costs about 0.2 s); each test
gets a fresh :class:`FakeTelnyxState` behind it.
"""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import telnyx
from starlette.types import ASGIApp, Receive, Scope, Send
from telnyx_simulator.fake_api import create_fake_api
from telnyx_simulator.serve import serve
from telnyx_simulator.state import FakeTelnyxState

API_KEY = "KEYsimulator_test"


class _Swappable:
    """An ASGI app that forwards to whichever app a test installs."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        assert self.app is not None, "no app installed"
        await self.app(scope, receive, send)


@dataclass
class Fake:
    state: FakeTelnyxState
    url: str

    def client(self, api_key: str | None = API_KEY, max_retries: int = 0) -> telnyx.AsyncTelnyx:
        return telnyx.AsyncTelnyx(
            api_key=api_key, base_url=f"{self.url}/v2", max_retries=max_retries
        )


@pytest.fixture(scope="session")
async def fake_server() -> AsyncIterator[tuple[_Swappable, str]]:
    swappable = _Swappable()
    async with serve(swappable) as url:
        yield swappable, url


FakeFactory = Callable[[FakeTelnyxState], Fake]


@pytest.fixture
def fake_factory(fake_server: tuple[_Swappable, str]) -> FakeFactory:
    """Installs a fake API over a given state: ``fake_factory(FakeTelnyxState(...)) -> Fake``."""
    swappable, url = fake_server

    def install(state: FakeTelnyxState) -> Fake:
        swappable.app = create_fake_api(state)
        return Fake(state, url)

    return install


@pytest.fixture
def fake(fake_factory: FakeFactory) -> Fake:
    return fake_factory(FakeTelnyxState(API_KEY))


@pytest.fixture
async def sdk(fake: Fake) -> AsyncIterator[telnyx.AsyncTelnyx]:
    async with fake.client() as client:
        client.calls.actions  # noqa: B018 - the SDK imports its resources lazily (over 1 s), not mid-call
        yield client
