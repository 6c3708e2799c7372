#!/usr/bin/env python3
"""
Clients that send but never read (issue 10): how much does the server take in, and grow?

For each transport a real server is started (``python -m twisted sockjs``, the demo whose
``/echo`` service echoes every message) on a free 127.0.0.1 port, and one client with a
4 KiB receive buffer (``SO_RCVBUF``, set before ``connect``) keeps sending messages of about
60 KB and never reads what the server sends back:

``websocket``
    SockJS websocket, ``/echo/<server>/<session>/websocket``, messages as ``["..."]``.
``raw-websocket``
    ``/echo/websocket``, the message as the text frame itself.
``xhr-streaming``
    a receiving ``POST /echo/000/<id>/xhr_streaming`` that is never read after its opening
    frame, and ``xhr_send`` POSTs of ``["<60 KB>"]`` pipelined on a second connection (which
    does read its answers).

The client stops after ``--max-mb`` sent, after ``--seconds``, when the server has not taken
a byte for ``--stall`` seconds (it stopped reading), or when the server drops the
connection. Printed per transport:

- bytes the client sent (accepted by its kernel);
- bytes the server process read off its socket(s): the client's sent bytes, less what is
  still in the client's send queue and the server socket's receive queue (both read from
  ``/proc/net/tcp``), so kernel buffers are not counted as the server's; for ``xhr_send``
  also the bodies answered ``204``;
- the server's RSS before, after and at its peak (``VmRSS`` sampled every 0.1 s, and
  ``VmHWM``);
- why the client stopped, and what the connection shows after it (read for ``--drain``
  seconds): a close frame (its code and reason), a dropped connection, or nothing yet;
- whether another client still gets an echo from the server while the slow one is connected.

Plain blocking-free sockets and ``select`` with timeouts; every loop is bounded in time and
the script stops by itself. Loopback only. Usage::

    python benchmarks/slow_reader.py                      # all three, 300 MB / 15 s each
    python benchmarks/slow_reader.py --max-mb 64 --seconds 8 websocket
    python benchmarks/slow_reader.py --json out.json --server-arg=--response-limit=1000000000

The integration tests (``tests/integration/test_slow_clients.py``) import this module.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
#: Size of the text of each message the slow client sends.
MESSAGE_BYTES = 60_000
#: The slow client's receive buffer (the kernel doubles it, see socket(7)).
CLIENT_RCVBUF = 4096
TRANSPORTS = ("websocket", "raw-websocket", "xhr-streaming")
MIB = 1024 * 1024


# -- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def proc_status_kib(pid: int, field_name: str) -> int:
    """A ``kB`` field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """
    ``python -m twisted [--reactor R] sockjs --listen tcp:PORT:interface=127.0.0.1 ARGS``,
    the demo (``/echo`` echoes), as a child process; its log goes to a file.
    """

    def __init__(self, args: Sequence[str] = (), reactor: str | None = None, tree: Path = REPO):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(
            prefix="slow-reader-server-", suffix=".log", delete=False
        )
        self.argv = [sys.executable, "-m", "twisted", "--log-format=text"]
        if reactor:
            self.argv.append(f"--reactor={reactor}")
        self.argv += ["sockjs", "--listen", f"tcp:{self.port}:interface={HOST}", *args]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            self.argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=tree, env=env
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}:\n{self.log_text()}"
                )
            try:
                status, _ = http_request(self.port, "GET", "/echo/info", b"", timeout=1.0)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready on port {self.port} within {timeout} s")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self) -> int:
        return proc_status_kib(self.pid, "VmRSS")

    def hwm_kib(self) -> int:
        return proc_status_kib(self.pid, "VmHWM")

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; removes the log file."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        os.unlink(self.log.name)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http_request(
    port: int, method: str, path: str, body: bytes, timeout: float = 5.0
) -> tuple[int, bytes]:
    """One HTTP/1.0 request on a fresh connection; the status and the whole response."""
    with socket.create_connection((HOST, port), timeout=timeout) as conn:
        head = f"{method} {path} HTTP/1.0\r\nHost: {HOST}:{port}\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        conn.sendall(head.encode() + body)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]), data


# -- kernel queues --------------------------------------------------------------------------------


def _hex_address(port: int) -> str:
    packed = socket.inet_aton(HOST)
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def tcp_queues(local_port: int, remote_port: int) -> tuple[int, int] | None:
    """
    ``(tx_queue, rx_queue)`` of the 127.0.0.1 TCP socket with these ports, from
    ``/proc/net/tcp``: bytes sent but not acknowledged by the peer, and bytes received but
    not read by the socket's owner. None when no such socket is listed.
    """
    local, remote = _hex_address(local_port), _hex_address(remote_port)
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def server_read(sock: socket.socket, sent: int) -> int | None:
    """
    Bytes of the ``sent`` ones that the server process has read off this connection: what
    is neither in the client's send queue nor in the server socket's receive queue.
    """
    local_port = sock.getsockname()[1]
    remote_port = sock.getpeername()[1]
    mine = tcp_queues(local_port, remote_port)
    theirs = tcp_queues(remote_port, local_port)
    if mine is None or theirs is None:
        return None
    return sent - mine[0] - theirs[1]


# -- websocket framing (client side) -------------------------------------------------------------


def masked_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final client frame (RFC 6455 5.2), masked with a fresh random key."""
    key = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, 0x80 | size])
    elif size < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    mask = (key * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(size, "big")
    return head + key + masked


class FrameReader:
    """Splits the server's (unmasked) frames out of a byte stream."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= 2:
            opcode = self.buffer[0] & 0x0F
            size = self.buffer[1] & 0x7F
            start = 2
            if size == 126:
                start, size = 4, int.from_bytes(self.buffer[2:4], "big")
            elif size == 127:
                start, size = 10, int.from_bytes(self.buffer[2:10], "big")
            if len(self.buffer) < start + size:
                break
            frames.append((opcode, self.buffer[start : start + size]))
            self.buffer = self.buffer[start + size :]
        return frames


def websocket_connect(
    port: int, path: str, rcvbuf: int | None, timeout: float = 5.0
) -> tuple[socket.socket, bytes]:
    """
    A blocking socket upgraded to a websocket at ``path`` (``SO_RCVBUF`` set before
    ``connect`` when given), and the bytes that came after the 101 answer.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((HOST, port))
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"no websocket answer on {path}: {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"websocket refused on {path}: {head!r}")
    return sock, rest


def sockjs_websocket_connect(port: int, rcvbuf: int | None) -> socket.socket:
    """A SockJS websocket session of ``/echo``, its ``o`` frame read."""
    sock, rest = websocket_connect(port, f"/echo/000/{uuid.uuid4().hex[:8]}/websocket", rcvbuf)
    reader = FrameReader()
    frames = reader.feed(rest)
    while not frames:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("websocket closed before its open frame")
        frames = reader.feed(chunk)
    if frames[0] != (0x1, b"o"):
        raise ConnectionError(f"expected the open frame, got {frames[0]!r}")
    return sock


def echo_check(port: int, timeout: float = 5.0) -> str:
    """Another client's echo over a SockJS websocket: ``"ok (N ms)"`` or what went wrong."""
    started = time.monotonic()
    try:
        sock = sockjs_websocket_connect(port, None)
        with sock:
            sock.settimeout(timeout)
            sock.sendall(masked_frame(b'["ping"]'))
            reader = FrameReader()
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    return "failed: connection closed"
                for opcode, payload in reader.feed(chunk):
                    if payload == b'a["ping"]':
                        return f"ok ({(time.monotonic() - started) * 1000:.0f} ms)"
                    if payload != b"h":
                        return f"failed: got {opcode} {payload[:60]!r}"
    except OSError as error:
        return f"failed: {type(error).__name__}: {error}"


# -- the slow client ------------------------------------------------------------------------------


@dataclass
class Result:
    """What one slow client run measured."""

    transport: str
    #: Bytes the client's kernel accepted from it.
    client_sent: int = 0
    #: Bytes the server process read off the client's sending connection (see module doc).
    server_read: int | None = None
    #: xhr_send only: bytes of the bodies the server answered 204.
    answered: int | None = None
    #: xhr_send only: answers by status code.
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    rss_peak_kib: int = 0
    hwm_kib: int = 0
    #: Why the client stopped sending.
    stopped: str = ""
    #: What the connection showed when read at the end (close frame, dropped, still open).
    closed: str = ""
    #: Another client's echo while the slow client was still connected.
    echo_after: str = ""
    #: Lines of the server's log with a traceback or an unhandled error.
    server_errors: int = 0

    @property
    def rss_growth_kib(self) -> int:
        return max(self.rss_after_kib, self.rss_peak_kib) - self.rss_before_kib

    def summary(self) -> str:
        read = "?" if self.server_read is None else f"{self.server_read / 1e6:.1f} MB"
        text = (
            f"{self.transport}: client sent {self.client_sent / 1e6:.1f} MB in "
            f"{self.seconds:.1f} s, server read {read}"
        )
        if self.answered is not None:
            text += f" (xhr_send answered {self.statuses}: {self.answered / 1e6:.1f} MB of bodies)"
        text += (
            f"; server RSS {self.rss_before_kib / 1024:.0f} MiB before, "
            f"{self.rss_after_kib / 1024:.0f} MiB after, peak {self.rss_peak_kib / 1024:.0f} MiB "
            f"(VmHWM {self.hwm_kib / 1024:.0f} MiB); stopped: {self.stopped}; "
            f"connection: {self.closed}; another client's echo: {self.echo_after}"
        )
        if self.server_errors:
            text += f"; {self.server_errors} error lines in the server log"
        return text


@dataclass
class Limits:
    """When the slow client stops: bytes sent, seconds, seconds without progress."""

    max_bytes: int = 300_000_000
    seconds: float = 15.0
    stall: float = 3.0
    #: Seconds the connection is read at the end, looking for how it was closed.
    drain: float = 3.0


class Sampler:
    """Samples the server's RSS, at most every 0.1 s."""

    def __init__(self, server: Server):
        self.server = server
        self.peak = server.rss_kib()
        self.last = 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self.last >= 0.1:
            self.last = now
            self.peak = max(self.peak, self.server.rss_kib())


def push(
    sock: socket.socket,
    unit: bytes,
    limits: Limits,
    sample: Callable[[], None],
    readable: Callable[[], str | None] | None = None,
) -> tuple[int, str]:
    """
    Send ``unit`` again and again on the non-blocking ``sock`` until a limit is hit or the
    server drops the connection (``readable``, if given, is called when ``sock`` has data
    and may return a reason to stop). Returns the bytes sent and why it stopped.
    """
    sock.setblocking(False)
    view = memoryview(unit)
    offset = sent = 0
    started = last_progress = time.monotonic()
    while True:
        now = time.monotonic()
        if sent >= limits.max_bytes:
            return sent, f"sent its {limits.max_bytes / 1e6:.0f} MB"
        if now - started >= limits.seconds:
            return sent, f"time limit ({limits.seconds:.0f} s)"
        if now - last_progress >= limits.stall:
            return sent, f"server stopped reading (nothing taken for {limits.stall:.0f} s)"
        readers = [sock] if readable is not None else []
        r, w, _ = select.select(readers, [sock], [], 0.1)
        sample()
        if r and readable is not None:
            reason = readable()
            if reason:
                return sent, reason
        if not w:
            continue
        try:
            n = sock.send(view[offset:])
        except BlockingIOError:
            continue
        except OSError as error:
            return sent, f"connection dropped by the server while sending ({error.strerror})"
        sent += n
        offset = (offset + n) % len(unit)
        last_progress = time.monotonic()


def drain_websocket(sock: socket.socket, seconds: float, sockjs: bool) -> str:
    """Read the websocket for up to ``seconds``: how was it closed, if at all?"""
    reader = FrameReader()
    received = 0
    deadline = time.monotonic() + seconds
    sockjs_close = ""
    sock.setblocking(False)
    while time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], 0.1)
        if not r:
            continue
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            continue
        except OSError as error:
            return f"dropped ({error.strerror}) after {received / 1e6:.1f} MB read{sockjs_close}"
        if not chunk:
            return (
                f"dropped without a close frame after {received / 1e6:.1f} MB read{sockjs_close}"
            )
        received += len(chunk)
        for opcode, payload in reader.feed(chunk):
            if sockjs and opcode == 0x1 and payload[:1] == b"c":
                sockjs_close = f", SockJS close frame {payload.decode(errors='replace')}"
            if opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                reason = payload[2:].decode(errors="replace")
                return (
                    f"close frame {code} {reason!r} after {received / 1e6:.1f} MB read"
                    + sockjs_close
                )
    return f"still open ({received / 1e6:.1f} MB read in {seconds:.0f} s){sockjs_close}"


def run_websocket(server: Server, raw: bool, limits: Limits) -> Result:
    """A websocket client (SockJS or raw) that sends ~60 KB messages and never reads."""
    result = Result("raw-websocket" if raw else "websocket")
    text = b"x" * MESSAGE_BYTES
    if raw:
        sock, _ = websocket_connect(server.port, "/echo/websocket", CLIENT_RCVBUF)
        frame = masked_frame(text)
    else:
        sock = sockjs_websocket_connect(server.port, CLIENT_RCVBUF)
        frame = masked_frame(b'["' + text + b'"]')
    with sock:
        sampler = Sampler(server)
        result.rss_before_kib = sampler.peak
        started = time.monotonic()
        result.client_sent, result.stopped = push(sock, frame, limits, sampler)
        result.seconds = time.monotonic() - started
        _settle(sampler)
        try:
            result.server_read = server_read(sock, result.client_sent)
        except OSError:
            pass
        _finish(server, result, sampler)
        result.closed = drain_websocket(sock, limits.drain, sockjs=not raw)
    return result


class HTTPAnswers:
    """Parses pipelined HTTP answers (Content-Length or no body) and counts them by status."""

    def __init__(self) -> None:
        self.buffer = b""
        self.statuses: dict[int, int] = {}
        self.other: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, rest = self.buffer.split(b"\r\n\r\n", 1)
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            size = int(match.group(1)) if match else 0
            if len(rest) < size:
                return
            status = int(head.split(b" ", 2)[1])
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status != 204:
                body = b" ".join(rest[:size][:80].split())
                self.other.append(head.split(b"\r\n", 1)[0] + b": " + body)
            self.buffer = rest[size:]


def dechunk(data: bytes) -> tuple[bytes, bool]:
    """The body of a chunked HTTP response read so far, and whether it ended."""
    body = b""
    while True:
        line, sep, rest = data.partition(b"\r\n")
        if not sep:
            return body, False
        try:
            size = int(line.split(b";")[0], 16)
        except ValueError:
            return body, False
        if size == 0:
            return body, True
        if len(rest) < size + 2:
            return body + rest[:size], False
        body += rest[:size]
        data = rest[size + 2 :]


def drain_streaming(sock: socket.socket, head_and_body: bytes, seconds: float) -> str:
    """Read the xhr_streaming response for up to ``seconds``: how did it end, if at all?"""
    data = head_and_body
    deadline = time.monotonic() + seconds
    how = f"still open after {seconds:.0f} s"
    sock.setblocking(False)
    while time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], 0.1)
        if not r:
            continue
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            continue
        except OSError as error:
            how = f"dropped ({error.strerror})"
            break
        if not chunk:
            how = "dropped"
            break
        data += chunk
    _, _, raw = data.partition(b"\r\n\r\n")
    body, ended = dechunk(raw)
    if ended and how.startswith("still open"):
        how = "response ended"
    closes = [line for line in body.split(b"\n") if line.startswith(b"c[")]
    if closes:
        how += ", SockJS close frame " + closes[-1].decode(errors="replace")
    else:
        how += ", no close frame"
    return how + f" ({len(body) / 1e6:.1f} MB of frames read)"


def run_xhr_streaming(server: Server, limits: Limits) -> Result:
    """
    An xhr_streaming receiver that is never read after its open frame, and xhr_send POSTs
    of ~60 KB messages pipelined on a second connection, whose answers are read.
    """
    result = Result("xhr-streaming", answered=0)
    session = f"/echo/000/{uuid.uuid4().hex[:8]}"
    receiver = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
    receiver.settimeout(5.0)
    receiver.connect((HOST, server.port))
    receiver.sendall(
        f"POST {session}/xhr_streaming HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )
    opened = b""
    while not re.search(rb"\r\n\r\n.*\no\n", opened, re.S):
        chunk = receiver.recv(4096)
        if not chunk:
            raise ConnectionError(f"xhr_streaming closed before its open frame: {opened!r}")
        opened += chunk
    body = json.dumps(["x" * MESSAGE_BYTES]).encode()
    request = (
        f"POST {session}/xhr_send HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
        f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    answers = HTTPAnswers()
    with receiver, socket.create_connection((HOST, server.port), timeout=5.0) as sender:

        def readable() -> str | None:
            try:
                chunk = sender.recv(1 << 16)
            except BlockingIOError:
                return None
            except OSError as error:
                return f"send connection dropped by the server ({error.strerror})"
            if not chunk:
                return "send connection closed by the server"
            answers.feed(chunk)
            if answers.other:
                return f"xhr_send answered {answers.other[0].decode(errors='replace')}"
            return None

        sampler = Sampler(server)
        result.rss_before_kib = sampler.peak
        started = time.monotonic()
        result.client_sent, result.stopped = push(sender, request, limits, sampler, readable)
        result.seconds = time.monotonic() - started
        _settle(sampler)
        try:
            result.server_read = server_read(sender, result.client_sent)
        except OSError:
            pass
        # Answers already on their way.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and not answers.other:
            r, _, _ = select.select([sender], [], [], 0.1)
            if r and readable() is not None:
                break
        result.statuses = dict(answers.statuses)
        result.answered = answers.statuses.get(204, 0) * len(body)
        _finish(server, result, sampler)
        result.closed = drain_streaming(receiver, opened, limits.drain)
    return result


def _settle(sampler: Sampler, seconds: float = 0.3) -> None:
    """Let the server finish what it has read (and be sampled) before measuring."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
        sampler()


def _finish(server: Server, result: Result, sampler: Sampler) -> None:
    """RSS after, peak and VmHWM; another client's echo while the slow one is connected."""
    result.echo_after = echo_check(server.port)
    sampler.last = 0.0
    sampler()
    result.rss_after_kib = server.rss_kib()
    result.rss_peak_kib = sampler.peak
    result.hwm_kib = server.hwm_kib()
    log = server.log_text()
    result.server_errors = len(re.findall(r"Traceback|Unhandled", log))


def run(
    transport: str,
    limits: Limits,
    server_args: Sequence[str] = (),
    reactor: str | None = None,
    tree: Path = REPO,
) -> Result:
    """One transport's run against a fresh server (running the txsockjs of ``tree``)."""
    with Server(server_args, reactor, tree) as server:
        if transport == "xhr-streaming":
            return run_xhr_streaming(server, limits)
        return run_websocket(server, transport == "raw-websocket", limits)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("transports", nargs="*", help=f"any of {', '.join(TRANSPORTS)} (all)")
    parser.add_argument("--max-mb", type=float, default=300.0, help="stop after sending this")
    parser.add_argument("--seconds", type=float, default=15.0, help="stop after this long")
    parser.add_argument("--stall", type=float, default=3.0, help="stop when nothing is taken")
    parser.add_argument("--drain", type=float, default=3.0, help="read the end this long")
    parser.add_argument("--reactor", default=None, help="the server's reactor (twist --reactor)")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="extra argument of `sockjs`, e.g. --server-arg=--response-limit=1000000000",
    )
    parser.add_argument(
        "--tree",
        type=Path,
        default=REPO,
        help="run the txsockjs of this source tree (e.g. `git archive HEAD` unpacked)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    options = parser.parse_args(argv)
    unknown = sorted(set(options.transports) - set(TRANSPORTS))
    if unknown:
        parser.error(f"unknown transport(s) {', '.join(unknown)}; known: {', '.join(TRANSPORTS)}")
    limits = Limits(int(options.max_mb * 1e6), options.seconds, options.stall, options.drain)
    results = []
    for transport in options.transports or TRANSPORTS:
        result = run(transport, limits, options.server_arg, options.reactor, options.tree)
        print(result.summary(), flush=True)
        results.append(result)
    if options.json:
        options.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
