"""
Fixtures of the integration tests: a real SockJS server on 127.0.0.1 and real clients.

Run them on the default reactor (``pytest tests/integration``) and on the asyncio reactor
(``pytest tests/integration --reactor asyncio``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_twisted

from .servers import REPORT, Harness


@pytest.fixture
def reactor() -> Any:
    """The reactor pytest-twisted installed (``--reactor default`` or ``asyncio``)."""
    from twisted.internet import reactor

    return reactor


@pytest_twisted.async_yield_fixture
async def harness(reactor: Any) -> AsyncIterator[Harness]:
    """A listening Site with several SockJS services; checked and stopped at teardown."""
    server = Harness(reactor)
    await server.start()
    yield server
    await server.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("txsockjs integration measurements")
        for line in REPORT:
            terminalreporter.write_line(line)
