"""
Drain against real servers: messages queued before the stop reach the connected client
before the close frame ``c[1001,"Server shutting down"]``.

Over a websocket, with ``twistd sockjs`` stopped by SIGTERM (the client does not read while
the stop begins, so the messages are still queued in the server); over xhr-polling, with a
service of the test's own Site drained while its client is between two polls.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import sys
import time
from typing import Any

import pytest_twisted
import treq
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from txsockjs._core.service import DRAINING

from .clients import TIMEOUT, WebSocketClient, with_timeout
from .servers import Harness, report

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: Messages of the burst written while the client does not read: more than the loopback
#: socket buffers hold, so that most of them wait in the session's queue.
BURST_COUNT = 1500
BURST_SIZE = 16 * 1024
DRAIN_TIMEOUT = 60.0


def twistd_command() -> list[str]:
    script = pathlib.Path(sys.executable).parent / "twistd"
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


class Twistd(ProcessProtocol):
    """A ``twistd`` process: its output, line by line, and its end."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._partial = ""
        self._waiting: list[tuple[re.Pattern[str], Deferred[re.Match[str]]]] = []
        #: Fires with the reason of the end, wrapped in a list (a Deferred fired with a
        #: Failure would fail).
        self.ended: Deferred[list[Failure]] = Deferred()

    def outReceived(self, data: bytes) -> None:
        text = self._partial + data.decode("utf-8", "replace")
        *lines, self._partial = text.split("\n")
        for line in lines:
            self.lines.append(line)
            for entry in list(self._waiting):
                pattern, d = entry
                match = pattern.search(line)
                if match:
                    self._waiting.remove(entry)
                    d.callback(match)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback([reason])

    def output(self) -> str:
        return "\n".join(self.lines + [self._partial])

    async def wait_for(self, reactor: Any, pattern: str, timeout: float = 60) -> re.Match[str]:
        compiled = re.compile(pattern)
        for line in self.lines:
            match = compiled.search(line)
            if match:
                return match
        d: Deferred[re.Match[str]] = Deferred()
        self._waiting.append((compiled, d))
        try:
            return await with_timeout(reactor, d, timeout)
        except Exception as error:
            raise AssertionError(
                f"no line matching {pattern!r} within {timeout} s:\n{self.output()}"
            ) from error


@pytest_twisted.ensureDeferred
async def test_sigterm_sends_queued_messages_then_1001_over_websocket(reactor: Any) -> None:
    process = Twistd()
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    args = twistd_command() + [
        "-n",
        "--pidfile=",
        "--logfile=-",
        "sockjs",
        "--listen=tcp:0:interface=127.0.0.1",
        "--factory=tests.integration.drain_app.factory",
        f"--max-queued-bytes={64 * 1024 * 1024}",
        f"--drain-timeout={DRAIN_TIMEOUT}",
    ]
    transport = reactor.spawnProcess(process, args[0], args, env=env, path=str(ROOT))
    client: WebSocketClient | None = None
    try:
        port = int((await process.wait_for(reactor, r"starting on (\d+)")).group(1))
        client = WebSocketClient(reactor, None, f"http://127.0.0.1:{port}")
        await client.open()
        client.pause_reading()
        await client.send(f"burst {BURST_COUNT} {BURST_SIZE}")
        await process.wait_for(reactor, f"burst of {BURST_COUNT} written")
        transport.signalProcess("TERM")
        await process.wait_for(reactor, r"draining 1 sessions")
        assert not process.ended.called, "the server stopped before its client read"
        stopped_at = time.monotonic()
        client.resume_reading()
        messages = await client.recv_many(BURST_COUNT, timeout=TIMEOUT * 3)
        assert [message[:6] for message in messages] == [f"{n:06d}" for n in range(BURST_COUNT)]
        assert all(len(message) == BURST_SIZE for message in messages)
        closed = await client.next_event()
        assert (closed.kind, closed.code, closed.reason) == ("close", 1001, "Server shutting down")
        ws_close = await client.wait_ws_closed()
        assert ws_close.code == 1001
        [reason] = await with_timeout(reactor, process.ended, DRAIN_TIMEOUT / 2)
        took = time.monotonic() - stopped_at
        # twistd ends with the signal that stopped it, once stopped.
        ended = reason.value
        assert isinstance(ended, ProcessTerminated) and ended.signal == signal.SIGTERM, (
            reason,
            process.output(),
        )
        assert "Traceback" not in process.output(), process.output()
        report(
            f"twistd sockjs SIGTERM drain: {BURST_COUNT} queued messages of {BURST_SIZE} bytes "
            f"then c[1001] delivered, process ended {took:.2f} s after the client resumed"
        )
    finally:
        if client is not None:
            await client.abort()
        if not process.ended.called:
            transport.signalProcess("KILL")
            await with_timeout(reactor, process.ended, TIMEOUT)


@pytest_twisted.ensureDeferred
async def test_polling_client_gets_queued_messages_then_1001(harness: Harness) -> None:
    resource = harness.services["control"]
    client = harness.client("xhr-polling", "control")
    assert await client.receive_once() == ["o"]
    await client.send("burst 3")  # the protocol writes 3 messages: queued, no poll waits
    drained = resource.drain(timeout=DRAIN_TIMEOUT)
    assert not drained.called
    other = await harness.http.post(f"{harness.url('control')}/000/other/xhr", data=b"")
    assert other.code == 503
    assert await treq.content(other) == b"Server shutting down.\n"
    assert resource.service.refusals[DRAINING] == 1
    assert await client.receive_once() == ['a["0","1","2"]']
    assert not drained.called
    assert await client.receive_once() == ['c[1001,"Server shutting down"]']
    await with_timeout(harness.reactor, drained, TIMEOUT)
    [control] = harness.controls
    [lost] = await with_timeout(harness.reactor, control.lost, TIMEOUT)
    assert lost is not None
