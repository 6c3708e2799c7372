"""
``twistd sockjs`` as a user runs it: a real twistd process on a free port of 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

import pytest
from sockjs_helpers import ServerProcess, XHRSession, info, request, run, twistd

TWISTD = twistd()
COMMON = ["-n", "--pidfile=", "--logfile=-"]
LOCAL = "--listen=tcp:0:interface=127.0.0.1"
STARTED = r"starting on (\d+)"


def test_helpListsEveryOption() -> None:
    result = run(TWISTD + ["sockjs", "--help"])
    assert result.returncode == 0, result.stdout
    for flag in (
        "--listen",
        "--factory",
        "--prefix",
        "--sockjs-url",
        "--heartbeat-delay",
        "--disconnect-delay",
        "--response-limit",
        "--no-websocket",
        "--jsessionid",
        "--disable-transport",
        "--static",
        "--max-message-bytes",
        "--max-sessions",
        "--high-watermark",
        "--low-watermark",
        "--trusted-proxy",
        "--expose-cookies",
        "--base-url",
        "--disable-cors",
        "--access-log",
    ):
        assert flag in result.stdout, flag


def test_listedAmongTwistdCommands() -> None:
    result = run(TWISTD + ["--help"])
    assert result.returncode == 0
    assert "sockjs" in result.stdout


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--heartbeat-delay=soon"], "heartbeat-delay"),
        (["--factory=no_such_module_txsockjs.factory"], "no_such_module_txsockjs"),
        (["--disable-transport=carrier-pigeon"], "carrier-pigeon"),
        (["--listen=carrier-pigeon:80"], "carrier-pigeon"),
    ],
)
def test_badValueEndsWithOneLineAndStatus1(argv: list[str], expected: str) -> None:
    result = run(TWISTD + COMMON + ["sockjs"] + argv)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout
    lastLine = result.stdout.strip().splitlines()[-1]
    assert expected in lastLine, result.stdout


def test_demoServer() -> None:
    with ServerProcess(TWISTD + COMMON + ["sockjs", LOCAL]) as server:
        port = server.port(r"starting on (\d+)")
        origin = f"http://127.0.0.1:{port}"
        # The URLs served, logged once listening, with the port it got.
        for what, path in [("SockJS echo service", "/echo"), ("demo page", "/")]:
            server.waitFor(rf"\[txsockjs#info\] serving: {what} at {origin}{path}$")

        assert info(f"{origin}/echo")["websocket"] is True

        status, headers, page = request(f"{origin}/")
        assert status == 200
        assert headers["content-type"].startswith("text/html")
        assert b"cdn.jsdelivr.net/npm/sockjs-client@1" in page
        assert b'"echo": "/echo"' in page

        echo = XHRSession(f"{origin}/echo")
        echo.send("hello", "\u00e9t\u00e9 \u2603")
        assert echo.receive(2) == ["hello", "\u00e9t\u00e9 \u2603"]

        alice = XHRSession(f"{origin}/chat")
        bob = XHRSession(f"{origin}/chat")
        alice.send("hi from alice")
        assert "hi from alice" in bob.receiveUntil(lambda got: "hi from alice" in got)
        assert "hi from alice" in alice.receiveUntil(lambda got: "hi from alice" in got)


def _sessionThenMarker(server: ServerProcess, origin: str) -> list[str]:
    """
    Open a session, echo, then make one more request and wait for its access log line:
    every line the session logged is printed before it. Returns the lines so far.
    """
    session = XHRSession(f"{origin}/echo")
    session.send("hello")
    assert session.receive(1) == ["hello"]
    request(f"{origin}/echo/info?marker")
    server.waitFor(r'"GET /echo/info\?marker HTTP/1.1" 200')
    return list(server.lines)


def test_debugEventsOnlyWithLogLevelDebug() -> None:
    """
    By default (info) no session event is logged; with --log-level=debug each session's
    opening is, and so is each refused request. Refusals by the origin policy are counted.
    """
    args = TWISTD + COMMON + ["sockjs", LOCAL, "--access-log"]
    with ServerProcess(args) as server:
        origin = f"http://127.0.0.1:{server.port(STARTED)}"
        lines = _sessionThenMarker(server, origin)
        assert not [line for line in lines if "[txsockjs#debug]" in line], lines
    allowed = "--allow-origin=https://app.example.com"
    debug = args + ["--log-level=debug", allowed, "--metrics=/metrics"]
    with ServerProcess(debug) as server:
        origin = f"http://127.0.0.1:{server.port(STARTED)}"
        lines = _sessionThenMarker(server, origin)
        assert [line for line in lines if "[txsockjs#debug] session_opened " in line], lines
        status, _, _ = request(
            f"{origin}/echo/000/abc/xhr", b"", "POST", headers={"Origin": "https://evil.example"}
        )
        assert status == 403
        server.waitFor(r"\[txsockjs#debug\] refused .*refusal=foreign_origin")
        _, _, metrics = request(f"{origin}/metrics")
        assert b'sockjs_refusals_total{reason="foreign_origin",service="/echo"} 1.0' in metrics, (
            metrics
        )


def test_factoryWithOptionsAndStatic(tmp_path: object) -> None:
    static = tmp_path / "public"  # type: ignore[operator]
    static.mkdir()
    (static / "hello.txt").write_text("static hello\n")
    args = (
        TWISTD
        + COMMON
        + [
            "sockjs",
            LOCAL,
            "--factory=twisted.protocols.wire.Echo",
            "--prefix=/app/echo",
            f"--static={static}",
            "--no-websocket",
            "--jsessionid",
            "--sockjs-url=/sockjs.min.js",
        ]
    )
    with ServerProcess(args) as server:
        port = server.port(r"starting on (\d+)")
        origin = f"http://127.0.0.1:{port}"
        status, _, body = request(f"{origin}/hello.txt")
        assert (status, body) == (200, b"static hello\n")
        description = info(f"{origin}/app/echo")
        assert description["websocket"] is False
        assert description["cookie_needed"] is True
        session = XHRSession(f"{origin}/app/echo")
        session.send("over xhr")
        assert session.receive(1) == ["over xhr"]


def test_installedCommandWorksFromAnyDirectory(tmp_path: object) -> None:
    """
    As installed (by ``pip install .``, or by tools/test.sh), not through the working tree on
    PYTHONPATH: twistd finds the plugin from any directory. An editable install must be
    made with ``--config-settings editable_mode=compat`` for this: setuptools' default
    editable finder hides ``twisted/plugins/`` from Twisted's plugin scan.
    """
    import os

    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = run(TWISTD + ["--help"], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "sockjs" in result.stdout, result.stdout


def _makeCertificate(directory: Any) -> tuple[Any, Any]:
    """The throwaway certificate of examples/tls.py."""
    import importlib.util

    from sockjs_helpers import EXAMPLES

    spec = importlib.util.spec_from_file_location("tls_example", EXAMPLES / "tls.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    key, certificate = module.makeCertificate(directory)
    return key, certificate


def test_tlsAndUnixListeners(tmp_path: Any) -> None:
    import socket
    import ssl

    key, certificate = _makeCertificate(tmp_path)
    sock = tmp_path / "sockjs.sock"
    args = (
        TWISTD
        + COMMON
        + [
            "sockjs",
            f"--listen=ssl:0:interface=127.0.0.1:privateKey={key}:certKey={certificate}",
            f"--listen=unix:{sock}",
        ]
    )
    with ServerProcess(args) as server:
        port = server.port(r"starting on (\d+)")
        context = ssl.create_default_context(cafile=str(certificate))
        base = f"https://127.0.0.1:{port}/echo"
        assert info(base, context)["websocket"] is True
        session = XHRSession(base, context)
        session.send("over TLS")
        assert session.receive(1) == ["over TLS"]

        server.waitFor(r"starting on .*sockjs\.sock")
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(15)
            client.connect(str(sock))
            client.sendall(b"GET /echo/info HTTP/1.0\r\nHost: localhost\r\n\r\n")
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.0 200"), answer
        assert b'"websocket":true' in answer
