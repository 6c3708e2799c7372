"""
Clients that send but never read (issue 10): the server's memory stays bounded.

Each test starts a real server (``python -m twisted sockjs``, the demo whose ``/echo``
echoes, on the reactor this run uses) on 127.0.0.1 and runs one client of
``benchmarks/slow_reader.py``: a 4 KiB ``SO_RCVBUF`` set before ``connect``, messages of
60 KB sent for as long as the server takes them (up to ``SEND_BYTES`` or ``SECONDS``), and
nothing ever read back. Then:

- the bytes the server process read off the connection (the client's sent bytes, less the
  client's send queue and the server socket's receive queue from ``/proc/net/tcp``) stay
  under :data:`READ_BOUND`;
- the server's RSS (sampled every 0.1 s) grows by less than :data:`RSS_BOUND`;
- nothing in the server's log is a traceback or an unhandled error;
- another client still gets its echo, while the slow one is still connected.

Whether the server pauses the client or closes its session (and with which code) is
reported, not asserted: the point is bounded memory.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from txsockjs._core.options import SockJSOptions

from .servers import report

ROOT = Path(__file__).resolve().parents[2]


def _load_slow_reader() -> ModuleType:
    """``benchmarks/slow_reader.py`` as a module (benchmarks/ is not a package)."""
    path = ROOT / "benchmarks" / "slow_reader.py"
    spec = importlib.util.spec_from_file_location("txsockjs_bench_slow_reader", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


slow_reader = _load_slow_reader()

MIB = 1024 * 1024
#: What the client tries to send; the server of issue 10 takes all of it, and grows by it.
SEND_BYTES = 128_000_000
#: The client gives up after this long, or after ``STALL`` seconds in which the server took
#: nothing (it stopped reading: the expected end).
SECONDS = 10.0
STALL = 2.0

_DEFAULTS = SockJSOptions()
HIGH_WATERMARK = _DEFAULTS.high_watermark
#: The per-session hard limit (``max_queued_bytes``, 4 MiB by default).
MAX_QUEUED_BYTES = int(getattr(_DEFAULTS, "max_queued_bytes", 4 * MIB))
MAX_MESSAGE_BYTES = _DEFAULTS.max_message_bytes


def _tcp_wmem_max() -> int:
    """The most a TCP socket's send buffer grows to by autotuning (``tcp_wmem``'s third)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * MIB


#: The most the server may have read off a client that never reads. What it read is either
#: echoed or not yet:
#:
#: - echoed and in the kernel: the server socket's send queue (at most its send buffer,
#:   autotuned up to ``tcp_wmem``'s maximum) and the client's receive queue (its 4 KiB
#:   ``SO_RCVBUF``, doubled by the kernel, with room to spare);
#: - echoed and in the server: the session's queue plus Twisted's transport buffer, which
#:   reading stops for above ``high_watermark`` and which may never pass
#:   ``max_queued_bytes``;
#: - not yet echoed: at most one message being read (``max_message_bytes``: autobahn's
#:   partial message, twisted.web's request body) plus one 64 KiB read;
#: - 2 MiB of margin (frame and HTTP overhead, a message decoded while another is read).
#:
#: About 12 MiB on Linux's defaults, against the ``SEND_BYTES`` the client tries to send.
READ_BOUND = (
    _tcp_wmem_max()
    + 4 * slow_reader.CLIENT_RCVBUF
    + HIGH_WATERMARK
    + MAX_QUEUED_BYTES
    + MAX_MESSAGE_BYTES
    + 64 * 1024
    + 2 * MIB
)
#: Growth of the server's RSS: generous (the queue, buffers, the allocator's slack and
#: whatever the first big messages warm up), but far below what buffering the client's
#: ``SEND_BYTES`` takes.
RSS_BOUND = 40 * MIB

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads kernel queues from /proc/net/tcp (Linux)"
)


@pytest.mark.parametrize(
    ("transport", "server_args"),
    [
        pytest.param("websocket", [], id="websocket"),
        pytest.param("raw-websocket", [], id="raw-websocket"),
        # The default response_limit (128 KiB) ends the stream soon: then the session has no
        # receiver at all, and what the client sends can only queue.
        pytest.param("xhr-streaming", [], id="xhr-streaming"),
        # A response_limit the test never reaches: the receiver stays attached, paused.
        pytest.param(
            "xhr-streaming", ["--response-limit", "1000000000"], id="xhr-streaming-attached"
        ),
    ],
)
def test_client_that_never_reads(
    request: pytest.FixtureRequest, transport: str, server_args: list[str]
) -> None:
    reactor: Any = request.config.getoption("reactor", default=None)
    limits = slow_reader.Limits(max_bytes=SEND_BYTES, seconds=SECONDS, stall=STALL, drain=1.0)
    result = slow_reader.run(
        transport,
        limits,
        server_args,
        reactor=None if reactor in (None, "default") else reactor,
    )
    label = transport + (" (receiver attached)" if server_args else "")
    bound = f"read bound {READ_BOUND / MIB:.0f} MiB"
    report(f"Non-reading client, {label}: {result.summary()} [{bound}]")

    assert result.echo_after.startswith("ok"), result.echo_after
    assert result.server_errors == 0, "tracebacks or unhandled errors in the server's log"
    assert result.server_read is not None, "the connection is not in /proc/net/tcp"
    assert result.server_read < READ_BOUND, (
        f"the server read {result.server_read / MIB:.1f} MiB off a client that never reads "
        f"(bound {READ_BOUND / MIB:.1f} MiB); client stopped: {result.stopped}"
    )
    assert result.rss_growth_kib * 1024 < RSS_BOUND, (
        f"server RSS grew by {result.rss_growth_kib / 1024:.0f} MiB "
        f"(bound {RSS_BOUND / MIB:.0f} MiB)"
    )
