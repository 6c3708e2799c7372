"""
Fixtures of the external checks: Autobahn|Testsuite's ``wstest`` (Python 2.7) and a real
server for it to test, each a subprocess on 127.0.0.1 stopped by its PID.
"""

from __future__ import annotations

import glob
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
AUTOBAHN_TOOLS = ROOT / "tools" / "autobahn"

#: How long a server may take to start listening, and to stop once told to.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
#: How long tools/autobahn/install.sh may take (a first install downloads about 30 packages).
INSTALL_TIMEOUT = 600.0

#: Lines for the terminal summary (the Autobahn counts), shown even when pytest captures output.
REPORT: list[str] = []


def report(line: str) -> None:
    """Add a line to the "external checks" section of pytest's terminal summary."""
    REPORT.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("external checks (Autobahn|Testsuite)")
        for line in REPORT:
            terminalreporter.write_line(line)


def find_python2() -> str | None:
    """
    The Python 2.7 that runs wstest, found as tools/autobahn/install.sh finds it:
    ``$AUTOBAHN_PYTHON2``, else the newest ``~/.pyenv/versions/2.7*/bin/python``.
    """
    explicit = os.environ.get("AUTOBAHN_PYTHON2")
    if explicit:
        return explicit
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = [
        path
        for path in glob.glob(os.path.join(pyenv_root, "versions", "2.7*", "bin", "python"))
        if os.access(path, os.X_OK)
    ]

    def version(path: str) -> tuple[int, ...]:
        name = pathlib.Path(path).parents[1].name
        return tuple(int(part) for part in re.findall(r"\d+", name))

    return max(candidates, key=version) if candidates else None


class Wstest:
    """``wstest`` of an installed autobahntestsuite, run by a Python 2.7."""

    def __init__(self, python2: str, folder: str) -> None:
        self.python2 = python2
        self.folder = folder

    def command(self, *args: str) -> list[str]:
        return [self.python2, str(AUTOBAHN_TOOLS / "wstest.py"), *args]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["AUTOBAHN_TESTSUITE_DIR"] = self.folder
        # Python 3 settings mean nothing to Python 2, and its site-packages must not leak in.
        for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"):
            env.pop(name, None)
        env["PYTHONUNBUFFERED"] = "1"
        return env


@pytest.fixture(scope="session")
def wstest() -> Wstest:
    """
    Autobahn|Testsuite, installed (or found installed) by tools/autobahn/install.sh.

    Skips only when there is no Python 2.7; tools/test.sh runs the install script first,
    which fails without one, so CI always has it.
    """
    python2 = find_python2()
    if python2 is None or not os.access(python2, os.X_OK):
        pytest.skip(
            "Autobahn|Testsuite needs Python 2.7 and none was found ($AUTOBAHN_PYTHON2, "
            "~/.pyenv/versions/2.7*/bin/python): `pyenv install 2.7.18`"
        )
    env = dict(os.environ, AUTOBAHN_PYTHON2=python2)
    done = subprocess.run(
        ["bash", str(AUTOBAHN_TOOLS / "install.sh")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"tools/autobahn/install.sh failed:\n{done.stdout}"
    folder = done.stdout.strip().splitlines()[-1]
    return Wstest(python2, folder)


def server_environment() -> dict[str, str]:
    """This process's environment, with the working tree first on the module path."""
    env = dict(os.environ)
    paths = [str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Server:
    """
    A server program run for a test, its output in a log file. Stopped by its PID (SIGTERM,
    then SIGKILL) when the context ends.
    """

    def __init__(self, args: Sequence[str], log: pathlib.Path, cwd: pathlib.Path) -> None:
        self.args = list(args)
        self.log = log
        self._output: IO[bytes] = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.args,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=server_environment(),
        )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def port(self, pattern: str) -> int:
        """Wait, at most START_TIMEOUT seconds, for the log line giving the listening port."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = compiled.search(self.output())
            if match:
                return int(match.group(1))
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.args} exited with {self.process.returncode} before listening:\n"
                    + self.output()
                )
            time.sleep(0.05)
        raise AssertionError(f"{self.args} not listening after {START_TIMEOUT}s:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        self._output.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def twistd_sockjs(tmp_path: pathlib.Path) -> Server:
    """``twistd -n sockjs`` (the demo server: ``/echo`` echoes) on a free port of 127.0.0.1."""
    script = pathlib.Path(sys.executable).parent / "twistd"
    twistd = (
        [sys.executable, str(script)]
        if script.exists()
        else [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
    )
    return Server(
        [
            *twistd,
            "-n",
            "--pidfile=",
            "--logfile=-",
            "sockjs",
            "--listen",
            "tcp:0:interface=127.0.0.1",
        ],
        tmp_path / "twistd.log",
        tmp_path,
    )


def reference_echo(tmp_path: pathlib.Path) -> Server:
    """autobahn's own echo server (tools/autobahn/reference_echo.py) on 127.0.0.1."""
    return Server(
        [sys.executable, str(AUTOBAHN_TOOLS / "reference_echo.py")],
        tmp_path / "reference_echo.log",
        tmp_path,
    )


@pytest.fixture
def websocket_url(tmp_path: pathlib.Path) -> Iterator[tuple[str, str, Server | None]]:
    """
    The websocket URL Autobahn|Testsuite tests, its agent name, and the server (if started
    here, for its log).

    - default: ``twistd -n sockjs``'s raw websocket endpoint, ``/echo/websocket``;
    - ``AUTOBAHN_SERVER=reference``: autobahn's own echo server, for comparison;
    - ``AUTOBAHN_URL=ws://...``: any server already running (``AUTOBAHN_AGENT`` names it).
    """
    url = os.environ.get("AUTOBAHN_URL")
    if url:
        yield url, os.environ.get("AUTOBAHN_AGENT", "external"), None
        return
    if os.environ.get("AUTOBAHN_SERVER", "txsockjs") == "reference":
        with reference_echo(tmp_path) as server:
            port = server.port(r"listening on port (\d+)")
            yield f"ws://127.0.0.1:{port}", "autobahn-reference", server
        return
    with twistd_sockjs(tmp_path) as server:
        # Twisted's own "<factory> starting on <port>" line.
        port = server.port(r"\bstarting on (\d+)")
        yield f"ws://127.0.0.1:{port}/echo/websocket", "txsockjs", server
