"""
Every program in ``examples/`` runs, listens on a free port of 127.0.0.1, and answers.
"""

from __future__ import annotations

import ssl
import sys

from sockjs_helpers import (
    EXAMPLES,
    ServerProcess,
    XHRSession,
    environment,
    info,
    request,
    twistd,
)

LOCAL = "tcp:0:interface=127.0.0.1"


def example(name: str, *args: str) -> ServerProcess:
    return ServerProcess([sys.executable, str(EXAMPLES / name), *args])


def test_echo() -> None:
    with example("echo.py", LOCAL) as server:
        base = f"http://127.0.0.1:{server.port()}/echo"
        assert info(base)["websocket"] is True
        session = XHRSession(base)
        session.send("ping", "pong")
        assert session.receive(2) == ["ping", "pong"]


def test_chat() -> None:
    with example("chat.py", LOCAL) as server:
        origin = f"http://127.0.0.1:{server.port()}"
        status, _, page = request(f"{origin}/")
        assert status == 200 and b"new SockJS" in page
        alice = XHRSession(f"{origin}/chat")
        bob = XHRSession(f"{origin}/chat")
        carol = XHRSession(f"{origin}/chat")
        bob.send("hello, everyone")
        for session in (alice, bob, carol):
            assert session.receive(1) == ["hello, everyone"]


def test_lineReceiver() -> None:
    with example("linereceiver.py", LOCAL, LOCAL) as server:
        tcpPort = int(server.waitFor(r"plain TCP on port (\d+)").group(1))
        base = f"http://127.0.0.1:{server.port()}/shout"
        session = XHRSession(base)
        assert session.receive(1) == ["HELLO. SAY SOMETHING.\r\n"]
        session.send("hello\r\n", "two\r\nlines\r\n")
        text = "".join(session.receiveUntil(lambda got: "LINES" in "".join(got)))
        assert text == "HELLO. SAY SOMETHING.\r\nHELLO\r\nTWO\r\nLINES\r\n"
        session.send("bye\r\n")
        session.receiveUntil(lambda got: session.closed is not None)
        assert session.closed == [3000, "Go away!"]

        import socket

        with socket.create_connection(("127.0.0.1", tcpPort), timeout=15) as sock:
            sock.sendall(b"tcp too\r\nbye\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        assert data == b"HELLO. SAY SOMETHING.\r\nTCP TOO\r\nBYE.\r\n"


def test_who() -> None:
    """The tutorial's step 4: the protocol learns the transport and headers over SockJS."""
    with example("who.py", LOCAL, LOCAL) as server:
        tcpPort = int(server.waitFor(r"plain TCP on port (\d+)").group(1))
        base = f"http://127.0.0.1:{server.port()}/shout"
        session = XHRSession(base)
        assert session.receive(1) == ["HELLO. SAY SOMETHING.\r\n"]
        server.waitFor(r"127\.0\.0\.1 connected with .* over xhr-polling")
        session.send("hello\r\n")
        assert session.receiveUntil(lambda got: "HELLO\r\n" in got)[-1] == "HELLO\r\n"

        import socket

        with socket.create_connection(("127.0.0.1", tcpPort), timeout=15) as sock:
            assert sock.recv(4096).startswith(b"HELLO. SAY SOMETHING.")
        server.waitFor(r"127\.0\.0\.1 connected over plain TCP")


def test_website() -> None:
    with example("website.py", LOCAL) as server:
        origin = f"http://127.0.0.1:{server.port()}"
        status, _, page = request(f"{origin}/")
        assert status == 200 and b"/api/echo" in page
        assert info(f"{origin}/api/echo")["websocket"] is True
        assert info(f"{origin}/echo2")["websocket"] is False
        session = XHRSession(f"{origin}/api/echo")
        session.send("beside static files")
        assert session.receive(1) == ["beside static files"]


def test_klein() -> None:
    with example("klein_app.py", LOCAL) as server:
        origin = f"http://127.0.0.1:{server.port()}"
        status, _, body = request(f"{origin}/")
        assert status == 200 and b"klein" in body
        assert info(f"{origin}/echo")["websocket"] is True
        session = XHRSession(f"{origin}/echo")
        session.send("under klein")
        assert session.receive(1) == ["under klein"]


def test_tls() -> None:
    with example("tls.py", "0", "127.0.0.1") as server:
        certificate = server.waitFor(r"certificate: (\S+)").group(1)
        port = server.port()
        context = ssl.create_default_context(cafile=certificate)
        base = f"https://127.0.0.1:{port}/echo"
        assert info(base, context)["websocket"] is True
        session = XHRSession(base, context)
        session.send("encrypted")
        assert session.receive(1) == ["encrypted"]
        refusing = ssl.create_default_context()
        try:
            request(f"{base}/info", context=refusing)
        except OSError as error:
            assert "CERTIFICATE_VERIFY_FAILED" in str(error)
        else:
            raise AssertionError("an unknown self-signed certificate was accepted")


def test_twistdFactory() -> None:
    args = twistd() + [
        "-n",
        "--pidfile=",
        "--logfile=-",
        "sockjs",
        "--listen=" + LOCAL,
        "--factory=twistd_app.factory",
        "--prefix=/count",
    ]
    with ServerProcess(args, env=environment([EXAMPLES])) as server:
        port = server.port(r"starting on (\d+)")
        base = f"http://127.0.0.1:{port}/count"
        first = XHRSession(base)
        second = XHRSession(base)
        first.send("a")
        assert first.receive(1) == ["1: a"]
        second.send("b")
        assert second.receive(1) == ["2: b"]
