"""
Backpressure end to end (issue 4): ``twisted.protocols.basic.FileSender`` streams 50 MB of
UTF-8 text to a deliberately slow client while the server's memory stays bounded.

The client reads as fast as it can, but every ``STALL_EVERY`` bytes it stops reading (the
response body's transport, or the websocket's TCP transport, is paused) until the server
shows that the slow client reached the session: its receiver reports a paused connection
(or, between two xhr-streaming responses, no receiver is attached). Then it reads on. No
timer decides anything: every wait is on an event, with a bounded timeout.

Measured: the session's queued bytes (``session._queued_bytes`` after each write; must stay
below ``high_watermark`` plus one chunk), the bytes the server read from the file but the
client has not received yet (must stay far below the file size: the producer really
stopped), and the process's peak RSS (reported; server and client share this process, so
only a generous bound is asserted, one that a server buffering the file would break).

``TXSOCKJS_BULK_BYTES`` sets the size (default 50 MB, what CI runs).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from .clients import Event, with_timeout
from .servers import Harness, SendFileFactory, report

SIZE = int(os.environ.get("TXSOCKJS_BULK_BYTES", str(50_000_000)))
STALL_EVERY = 1024 * 1024
#: The stream of xhr-streaming ends (and the client reconnects) after this many bytes.
RESPONSE_LIMIT = 8 * 1024 * 1024


def rss_kib(field: str = "VmRSS") -> int:
    """This process's resident set size (or its peak, ``VmHWM``), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


@pytest.mark.parametrize("transport", ["xhr-streaming", "websocket"])
@pytest_twisted.ensureDeferred
async def test_file_sender_to_slow_client(harness: Harness, reactor: Any, transport: str) -> None:
    factory = SendFileFactory(SIZE)
    resource = harness.mount("bulk", factory, response_limit=RESPONSE_LIMIT)
    high_watermark = resource.options.high_watermark
    stats = {
        "max_queued": 0,
        "max_chunk": 0,
        "max_in_flight": 0,
        "pauses": 0,
        "stalls": 0,
        "stalls_paused": 0,
    }
    consumed = 0
    sessions: list[Any] = []

    def in_flight() -> int:
        return factory.files[0].position - consumed if factory.files else 0

    class MeasuringConsumer:
        """
        The session, as FileSender's consumer, measured after each write. (Sessions have
        ``__slots__``, so the measurement wraps the consumer instead of patching it.)
        """

        def __init__(self, session: Any):
            self.session = session
            sessions.append(session)

        def registerProducer(self, producer: Any, streaming: bool) -> None:
            self.session.registerProducer(producer, streaming)

        def unregisterProducer(self) -> None:
            self.session.unregisterProducer()

        def write(self, data: bytes) -> None:
            session = self.session
            before = session._queued_bytes
            session.write(data)
            after = session._queued_bytes
            stats["max_chunk"] = max(stats["max_chunk"], after - before)
            stats["max_queued"] = max(stats["max_queued"], after)
            stats["max_in_flight"] = max(stats["max_in_flight"], in_flight())
            watch(session._receiver)
            harness.changed()

    watched: list[Any] = []

    def watch(receiver: Any) -> None:
        """Hear when the connection pauses this receiver (instance attribute wrapping)."""
        if receiver is None or (watched and watched[-1] is receiver):
            return
        watched.append(receiver)
        pause = receiver.pauseProducing

        def paused() -> None:
            pause()
            stats["pauses"] += 1
            harness.changed()

        receiver.pauseProducing = paused

    factory.wrap_consumer = MeasuringConsumer

    def server_held_back() -> bool:
        """The slow client reached the session: its receiver is paused, or it has none."""
        session = sessions[0]
        return bool(session._receiver_paused or session._receiver is None)

    client = harness.client(transport, "bulk")
    received = hashlib.sha256()
    closed: Deferred[Event] = Deferred()
    failures: list[BaseException] = []
    baseline_rss = rss_kib()
    peak_rss = baseline_rss
    next_stall = STALL_EVERY

    async def stall() -> None:
        nonlocal peak_rss
        try:
            await harness.until(server_held_back, "the slow client holds the server back")
            stats["stalls"] += 1
            stats["stalls_paused"] += sessions[0]._receiver is not None
            stats["max_in_flight"] = max(stats["max_in_flight"], in_flight())
            peak_rss = max(peak_rss, rss_kib())
        except BaseException as error:
            failures.append(error)
        finally:
            client.resume_reading()

    def sink(event: Event) -> None:
        nonlocal consumed, next_stall, peak_rss
        if event.kind == "message":
            data = event.text.encode("utf-8")
            received.update(data)
            consumed += len(data)
            if consumed >= next_stall:
                next_stall += STALL_EVERY
                peak_rss = max(peak_rss, rss_kib())
                client.pause_reading()
                Deferred.fromCoroutine(stall())
        elif event.kind == "close" and not closed.called:
            closed.callback(event)

    client.sink = sink
    client.record_frames = False
    started = reactor.seconds()
    await client.start()
    close = await with_timeout(reactor, closed, 120)
    elapsed = reactor.seconds() - started
    assert not failures, failures
    assert (close.code, close.reason) == (3000, "Go away!")
    [sent] = factory.files
    assert consumed == sent.size
    assert received.hexdigest() == sent.digest()

    mib = 1024 * 1024
    report(
        f"FileSender {sent.size / 1e6:.0f} MB over {transport} to a slow client: "
        f"{elapsed:.1f} s, {stats['stalls']} stalls ({stats['stalls_paused']} with the "
        f"receiver paused, the others between two responses), receiver paused "
        f"{stats['pauses']} times"
        + (f", {client.reconnects} reconnects" if transport == "xhr-streaming" else "")
        + f"; session queue max {stats['max_queued'] / 1024:.0f} KiB "
        f"(high_watermark {high_watermark / 1024:.0f} KiB, chunk max "
        f"{stats['max_chunk'] / 1024:.0f} KiB); read ahead of the client max "
        f"{stats['max_in_flight'] / mib:.1f} MiB; RSS {baseline_rss / 1024:.0f} MiB before, "
        f"{peak_rss / 1024:.0f} MiB peak during the run (VmHWM {rss_kib('VmHWM') / 1024:.0f} MiB)"
    )
    # Every stall held the server back: the slow client reached the session.
    assert stats["stalls"] >= SIZE // STALL_EVERY - 1
    # The session's queue stays bounded whatever the client does ...
    assert stats["max_queued"] < high_watermark + stats["max_chunk"]
    # ... and the producer really stopped: the server never read far ahead of the client
    # (what is in flight is the queue, the transport's buffer and the kernel's socket
    # buffers), while without backpressure it would read the whole file at once.
    assert stats["max_in_flight"] < min(SIZE // 2, 32 * mib)
    # The process did not grow by anything like the file (sampled at every stall; a server
    # that buffered the file would grow by more than its size).
    assert (peak_rss - baseline_rss) * 1024 < min(SIZE * 0.8, 40 * mib)
