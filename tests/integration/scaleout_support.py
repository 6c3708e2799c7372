"""
The real engines of the scale-out tests: redis-server, ``twistd sockjs`` processes and
HAProxy with the shipped ``examples/deploy/haproxy.cfg``, each started in the foreground on
a free 127.0.0.1 port and stopped by its PID; and sockjs-client in node
(``scaleout_client.js``) as the client. Every wait is bounded.
"""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "examples" / "deploy" / "haproxy.cfg"
NODE_MODULES = ROOT / "tests" / "browser" / "node_modules"
CLIENT_JS = Path(__file__).with_name("scaleout_client.js")
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
#: How long a process may take to start answering.
START_TIMEOUT = 30.0


def unavailable(why: str) -> None:
    """Skip on a developer's machine; fail in CI, whose test script installs the engines."""
    if os.environ.get("CI"):
        pytest.fail(f"scale-out tests cannot run in CI: {why}", pytrace=False)
    pytest.skip(why)


def program(name: str, *extra: str) -> str:
    """The path of a program (also looked for in the given directories), or skip."""
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in extra if os.access(Path(d) / name, os.X_OK)), None
    )
    if found is None:
        unavailable(f"no {name}: run tools/test.sh, or apt-get install {name}")
    assert found is not None
    return found


def freePort() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def waitUntil(predicate: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> float:
    """Poll ``predicate`` every 50 ms until it holds; the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def httpGet(url: str, timeout: float = 2.0) -> tuple[int, bytes] | None:
    """Status and body of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return None


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Process:
    """A program in the foreground, its output in a log file; stopped by its PID."""

    def __init__(
        self, name: str, args: Sequence[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log = log
        with open(log, "ab") as output:
            self.popen = subprocess.Popen(
                self.args,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env if env is not None else environment(),
                cwd=str(log.parent),
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 10 s; the exit status."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        return self.popen.returncode


def redisPing(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Cluster:
    """
    Three ``twistd sockjs`` processes (``s1``..``s3``) behind HAProxy with the shipped
    configuration, and a redis-server if asked.

    :param twistdArgs: the ``twistd sockjs`` options of every process (``--listen`` is
        added); ``{redis}`` in them becomes the Redis URL.
    :param reactor: twistd's ``--reactor``.
    """

    names = ("s1", "s2", "s3")

    def __init__(
        self,
        directory: Path,
        twistdArgs: Sequence[str],
        redis: bool = False,
        reactor: str = "default",
    ):
        self.directory = directory
        self.twistdArgs = list(twistdArgs)
        self.reactor = reactor
        self.haproxyPath = program("haproxy", "/usr/sbin")
        self.redisPath = program("redis-server", "/usr/bin") if redis else None
        self.redisPort = freePort() if redis else 0
        self.ports = {name: freePort() for name in self.names}
        self.port = freePort()
        self.statsPort = freePort()
        self.backends: dict[str, Process] = {}
        self.redis: Process | None = None
        self.haproxy: Process | None = None

    @property
    def redisURL(self) -> str:
        return f"redis://127.0.0.1:{self.redisPort}/0"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def backendURL(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    # -- processes ----------------------------------------------------------------------------

    def startRedis(self) -> float:
        """Start redis-server (no persistence); seconds until it answers PING."""
        assert self.redisPath is not None
        self.redis = Process(
            "redis",
            [
                self.redisPath,
                "--port",
                str(self.redisPort),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            self.directory / "redis.log",
        )
        return waitUntil(lambda: redisPing(self.redisPort), "redis-server answers PING")

    def startBackend(self, name: str, wait: bool = True) -> Process:
        args = [arg.replace("{redis}", self.redisURL) for arg in self.twistdArgs]
        process = Process(
            name,
            [
                *TWISTD,
                "-n",
                "--pidfile=",
                "--logfile=-",
                f"--reactor={self.reactor}",
                "sockjs",
                f"--listen=tcp:{self.ports[name]}:interface=127.0.0.1",
                "--trusted-proxy=127.0.0.1",
                *args,
            ],
            self.directory / f"{name}.log",
            environment(SCALEOUT_NAME=name),
        )
        self.backends[name] = process
        if wait:
            self.waitForBackend(name)
        return process

    def waitForBackend(self, name: str) -> None:
        process = self.backends[name]

        def answers() -> bool:
            if not process.alive():
                raise AssertionError(f"{name} exited:\n{process.tail()}")
            return httpGet(self.backendURL(name, "/echo/info")) is not None

        waitUntil(answers, f"{name} answers")

    def startHAProxy(self) -> None:
        env = environment(
            SOCKJS_BIND=f"127.0.0.1:{self.port}",
            SOCKJS_STATS=f"127.0.0.1:{self.statsPort}",
            **{f"SOCKJS_{name.upper()}": f"127.0.0.1:{port}" for name, port in self.ports.items()},
        )
        self.haproxy = Process(
            "haproxy",
            [self.haproxyPath, "-db", "-f", str(HAPROXY_CFG)],
            self.directory / "haproxy.log",
            env,
        )
        self.waitForStatus(dict.fromkeys(self.names, "UP"))

    def start(self) -> None:
        if self.redisPath is not None:
            self.startRedis()
        for name in self.names:
            self.startBackend(name, wait=False)
        for name in self.names:
            self.waitForBackend(name)
        self.startHAProxy()

    def stop(self) -> dict[str, int | None]:
        """Stop everything by PID; the exit status of each process."""
        codes: dict[str, int | None] = {}
        if self.haproxy is not None:
            codes["haproxy"] = self.haproxy.stop()
        for name, process in self.backends.items():
            codes[name] = process.stop()
        if self.redis is not None:
            codes["redis"] = self.redis.stop()
        return codes

    # -- HAProxy's view ------------------------------------------------------------------------

    def status(self) -> dict[str, str]:
        """The status of each server in HAProxy's stats (UP, DOWN, ...)."""
        answer = httpGet(f"http://127.0.0.1:{self.statsPort}/;csv")
        if answer is None or answer[0] != 200:
            return {}
        rows = csv.DictReader(io.StringIO(answer[1].decode().lstrip("# ")))
        return {
            row["svname"]: row["status"].split()[0]
            for row in rows
            if row["pxname"] == "sockjs" and row["svname"] in self.names
        }

    def setState(self, name: str, action: str) -> None:
        """An admin action of the stats page on one server: drain, maint or ready."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.statsPort}/",
            data=f"s={name}&action={action}&b=sockjs".encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert "st=DONE" in response.url, response.url

    def waitForStatus(self, wanted: dict[str, str], timeout: float = START_TIMEOUT) -> float:
        """Seconds until HAProxy reports these statuses."""

        def reached() -> bool:
            if self.haproxy is not None and not self.haproxy.alive():
                raise AssertionError(f"haproxy exited:\n{self.haproxy.tail()}")
            status = self.status()
            return all(status.get(name) == value for name, value in wanted.items())

        return waitUntil(reached, f"HAProxy reports {wanted}", timeout)


class NodeClient:
    """sockjs-client in node, driven by JSON commands (see ``scaleout_client.js``)."""

    def __init__(self, log: Path) -> None:
        node = program("node")
        if not (NODE_MODULES / "sockjs-client" / "package.json").exists():
            unavailable("no sockjs-client: run `npm ci` in tests/browser (tools/test.sh does)")
        self._stderr = open(log, "ab")
        self.popen = subprocess.Popen(
            [node, str(CLIENT_JS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=environment(NODE_PATH=str(NODE_MODULES)),
            text=True,
        )
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._id = 0

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def call(self, timeout: float = 60.0, **command: Any) -> dict[str, Any]:
        self._id += 1
        command["id"] = self._id
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps(command) + "\n")
        self.popen.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._answers.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"node client: no answer to {command} in {timeout} s"
                ) from None
            if line is None:
                raise AssertionError("node client exited")
            answer: dict[str, Any] = json.loads(line)
            if answer.get("id") == self._id:
                assert "error" not in answer, answer["error"]
                return answer

    def close(self) -> None:
        if self.popen.poll() is None:
            try:
                self.call(cmd="exit", timeout=5)
            except (AssertionError, OSError):
                pass
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._stderr.close()
