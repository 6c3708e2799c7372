"""
Helpers for the tests that run real programs: start one, read its log for the port it
listens on, and talk SockJS to it over xhr-polling with nothing but the standard library.
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import re
import secrets
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

#: How long a program may take to start listening, and an HTTP request to answer.
START_TIMEOUT = 60.0
HTTP_TIMEOUT = 15.0


def twistd(python: str | os.PathLike[str] = sys.executable) -> list[str]:
    """The command that runs twistd with the given interpreter: its own script if any."""
    script = pathlib.Path(python).parent / "twistd"
    if script.exists():
        return [str(python), str(script)]
    return [str(python), "-c", "from twisted.scripts.twistd import run; run()"]


def environment(extra_path: Sequence[pathlib.Path] = ()) -> dict[str, str]:
    """This process's environment, with the working tree first on the module path."""
    env = dict(os.environ)
    paths = [str(path) for path in (*extra_path, ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ServerProcess:
    """
    A program run for a test, its output read line by line on a thread.

    Use as a context manager: the program is terminated (then killed) on exit.
    """

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.args = list(args)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else environment(),
            cwd=cwd,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def output(self) -> str:
        return "".join(self.lines)

    def waitFor(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        """Wait, at most ``timeout`` seconds, for a line of output matching ``pattern``."""
        compiled = re.compile(pattern)
        for line in self.lines:
            match = compiled.search(line)
            if match:
                return match
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no line matching {pattern!r} within {timeout}s from {self.args}:\n"
                    + self.output()
                )
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.process.wait(timeout=HTTP_TIMEOUT)
                raise AssertionError(
                    f"{self.args} exited with {self.process.returncode} before printing a "
                    f"line matching {pattern!r}:\n{self.output()}"
                )
            self.lines.append(line)
            match = compiled.search(line)
            if match:
                return match

    def port(self, pattern: str = r"listening on port (\d+)") -> int:
        return int(self.waitFor(pattern).group(1))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=HTTP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=HTTP_TIMEOUT)
        self._reader.join(timeout=HTTP_TIMEOUT)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run(
    args: Sequence[str], timeout: float = 120.0, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a program to its end and return what it printed (stdout and stderr together)."""
    kwargs.setdefault("env", environment())
    return subprocess.run(
        list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def request(
    url: str,
    body: bytes | None = None,
    method: str | None = None,
    context: ssl.SSLContext | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; returns status, headers (lowercase names) and body."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT, context=context) as response:
            return (
                response.status,
                {name.lower(): value for name, value in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def info(base: str, context: ssl.SSLContext | None = None) -> dict[str, Any]:
    """GET ``base/info`` and decode it."""
    status, headers, body = request(f"{base}/info", context=context)
    assert status == 200, (status, body)
    assert headers["content-type"].startswith("application/json"), headers
    decoded: dict[str, Any] = json.loads(body)
    return decoded


class XHRSession:
    """A SockJS session over xhr-polling, as sockjs-client would open one."""

    def __init__(self, base: str, context: ssl.SSLContext | None = None) -> None:
        self.base = base
        self.context = context
        self.url = f"{base}/000/{secrets.token_hex(4)}"
        self.received: list[str] = []
        self.closed: list[Any] | None = None
        frames = self._poll()
        assert frames[0] == "o", frames

    def _poll(self) -> list[str]:
        status, _, body = request(f"{self.url}/xhr", b"", "POST", self.context)
        assert status == 200, (status, body)
        text = body.decode("utf-8")
        assert text.endswith("\n"), text
        frame = text[:-1]
        if frame.startswith("a"):
            self.received.extend(json.loads(frame[1:]))
        elif frame.startswith("c"):
            self.closed = json.loads(frame[1:])
        return [frame]

    def send(self, *messages: str) -> None:
        payload = json.dumps(list(messages)).encode("utf-8")
        status, _, body = request(
            f"{self.url}/xhr_send",
            payload,
            "POST",
            self.context,
            {"Content-Type": "text/plain;charset=UTF-8"},
        )
        assert status == 204, (status, body)

    def receiveUntil(self, predicate: Any, polls: int = 20) -> list[str]:
        """Poll (at most ``polls`` times) until ``predicate(received)`` holds."""
        for _ in range(polls):
            if predicate(self.received):
                return self.received
            if self.closed is not None:
                break
            self._poll()
        assert predicate(self.received), (self.received, self.closed)
        return self.received

    def receive(self, count: int) -> list[str]:
        """Poll until ``count`` messages in all have arrived; return them."""
        return self.receiveUntil(lambda received: len(received) >= count)
