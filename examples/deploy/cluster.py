"""
The chat across processes, with one command: redis-server, three ``twistd sockjs``
processes (the demo: echo, chat and page, the chat one room through Redis) and HAProxy with
``haproxy.cfg`` from this directory, all on 127.0.0.1::

    python examples/deploy/cluster.py
    # then open http://127.0.0.1:8000/ in two browsers; HAProxy's stats are on
    # http://127.0.0.1:8404/

It needs ``haproxy`` and ``redis-server`` (Debian: ``apt-get install haproxy
redis-server``) and txsockjs with its Redis extra (``pip install txsockjs[redis]``). Each
program runs in the foreground, its output in a log file of ``--workdir``; one that dies is
started again a second later (try ``kill -9`` on a backend, or on redis-server, and watch
the chat go on). Ctrl-C stops them all.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import FrameType

HERE = Path(__file__).resolve().parent
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def find(name: str) -> str:
    path = shutil.which(name) or next(
        (f"{d}/{name}" for d in ("/usr/sbin", "/usr/bin") if os.access(f"{d}/{name}", os.X_OK)),
        None,
    )
    if path is None:
        raise SystemExit(f"{name} not found: apt-get install {name}")
    return path


def answers(check: str) -> bool:
    """Whether a check of the form ``redis:PORT`` or ``http:URL`` succeeds now."""
    kind, _, target = check.partition(":")
    try:
        if kind == "redis":
            with socket.create_connection(("127.0.0.1", int(target)), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        with urllib.request.urlopen(target, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class Program:
    """One program of the cluster, started again if it dies."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str], check: str):
        self.name = name
        self.args = args
        self.log = log
        self.env = env
        self.check = check
        self.process: subprocess.Popen[bytes] | None = None
        self.diedAt: float | None = None

    def start(self) -> None:
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                self.args,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )
        self.diedAt = None
        say(f"started {self.name} pid {self.process.pid} (log: {self.log})")

    def waitUntilReady(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not answers(self.check):
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{self.name} did not start; see {self.log}")
            time.sleep(0.1)

    def supervise(self) -> None:
        """Start the program again a second after it died."""
        if self.process is None or self.process.poll() is None:
            return
        if self.diedAt is None:
            self.diedAt = time.monotonic()
            say(f"{self.name} exited with {self.process.returncode}; restarting it in 1 s")
        elif time.monotonic() - self.diedAt >= 1.0:
            self.start()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="HAProxy's port (8000)")
    parser.add_argument("--stats-port", type=int, default=8404, help="stats page (8404)")
    parser.add_argument("--redis-port", type=int, default=6390, help="redis-server (6390)")
    parser.add_argument(
        "--backend-ports", default="8081,8082,8083", help="the three twistd processes"
    )
    parser.add_argument("--workdir", help="where the logs go (a new temporary directory)")
    parser.add_argument(
        "--twistd-arg",
        action="append",
        default=[],
        help="one more option for every `twistd sockjs` (repeatable)",
    )
    options = parser.parse_args()
    ports = [int(port) for port in options.backend_ports.split(",")]
    if len(ports) != 3:
        parser.error("--backend-ports takes three ports (haproxy.cfg names three servers)")
    workdir = Path(options.workdir or tempfile.mkdtemp(prefix="txsockjs-cluster-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    redisURL = f"redis://127.0.0.1:{options.redis_port}/0"

    programs = [
        Program(
            "redis",
            [find("redis-server"), "--port", str(options.redis_port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no"],
            workdir / "redis.log",
            env,
            f"redis:{options.redis_port}",
        )
    ]
    for number, port in enumerate(ports, 1):
        programs.append(
            Program(
                f"s{number}",
                [*TWISTD, "-n", "--pidfile=", "--logfile=-", "sockjs"]
                + [f"--listen=tcp:{port}:interface=127.0.0.1", f"--redis={redisURL}"]
                + ["--trusted-proxy=127.0.0.1", *options.twistd_arg],
                workdir / f"s{number}.log",
                env,
                f"http:http://127.0.0.1:{port}/echo/info",
            )
        )
    haproxyEnv = dict(
        env,
        SOCKJS_BIND=f"127.0.0.1:{options.port}",
        SOCKJS_STATS=f"127.0.0.1:{options.stats_port}",
        **{f"SOCKJS_S{number}": f"127.0.0.1:{port}" for number, port in enumerate(ports, 1)},
    )
    programs.append(
        Program(
            "haproxy",
            [find("haproxy"), "-db", "-f", str(HERE / "haproxy.cfg")],
            workdir / "haproxy.log",
            haproxyEnv,
            f"http:http://127.0.0.1:{options.port}/echo/info",
        )
    )

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for program in programs:
            program.start()
            program.waitUntilReady()
            if stopping:
                return
        say(
            f"ready: http://127.0.0.1:{options.port}/ (stats: "
            f"http://127.0.0.1:{options.stats_port}/, logs: {workdir}); Ctrl-C stops"
        )
        while not stopping:
            for program in programs:
                program.supervise()
            time.sleep(0.2)
    finally:
        for program in reversed(programs):
            program.stop()
        say("stopped")


if __name__ == "__main__":
    main()
