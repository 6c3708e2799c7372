"""
Scale-out with the real engines: three ``twistd sockjs`` processes behind HAProxy running
the shipped ``examples/deploy/haproxy.cfg``, a redis-server for the chat, and sockjs-client
(node, and Chromium for the transports node lacks) as the clients.

* every transport echoes through HAProxy, in order, and every session stays on its backend;
* a backend killed mid-run: new sessions succeed, sessions on the others keep working;
  restarted: every session opened meanwhile keeps working (none lost);
* the demo chat (``twistd sockjs --redis``) is one room across the processes, in order, and
  recovers by itself from a redis-server restart;
* ``examples/deploy/cluster.py`` starts the whole thing with one command.

The engines are started on free 127.0.0.1 ports in the foreground and stopped by PID. The
measurements go to the run's terminal summary.
"""

from __future__ import annotations

import collections
import functools
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .scaleout_support import (
    ROOT,
    Cluster,
    NodeClient,
    Process,
    environment,
    freePort,
    redisPing,
    unavailable,
    waitUntil,
)
from .servers import report

#: The transports sockjs-client has in node (htmlfile and jsonp need a browser page).
NODE_TRANSPORTS = ["websocket", "xhr-streaming", "xhr-polling", "eventsource"]
PER_TRANSPORT = 6
ECHOES = 10


@pytest.fixture(scope="module")
def reactorName(request: pytest.FixtureRequest) -> str:
    """
    The reactor of this run (``--reactor``). The rerun of tests/integration on the asyncio
    reactor runs the chat's processes on it (the Redis bridge on asyncio); the other tests
    run nothing in any reactor of pytest's and are not repeated.
    """
    name: str = request.config.getoption("reactor", "default")
    return name


#: For the tests that are not repeated on the asyncio reactor (a mark, evaluated before any
#: fixture is set up: Playwright's sync API cannot even start inside asyncio's loop).
onceOnly = pytest.mark.skipif(
    "config.getoption('reactor', 'default') != 'default'",
    reason="runs its servers as processes, on the default reactor: once is enough",
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scaleout")


@pytest.fixture(scope="module")
def node(workdir: Path) -> Iterator[NodeClient]:
    client = NodeClient(workdir / "node.log")
    yield client
    client.close()


def checkStopped(cluster: Cluster, codes: dict[str, int | None]) -> None:
    """Every process stopped on SIGTERM (twistd exits with the signal after its shutdown)."""
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), codes
    for name, process in cluster.backends.items():
        log = process.log.read_text("utf-8", "replace")
        assert "Traceback" not in log and "Unhandled" not in log, f"{name}:\n{log}"
        assert "Server Shut Down." in log, f"{name}:\n{log}"


def perBackend(sessions: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(collections.Counter(s["backend"] for s in sessions).items()))


def failures(results: dict[str, str]) -> dict[str, str]:
    """The sessions whose echo was not ``ok``, and what happened to them."""
    return {name: result for name, result in results.items() if result != "ok"}


# -- echo through HAProxy; one backend killed and restarted ------------------------------------


@pytest.fixture(scope="module")
def echoCluster(workdir: Path) -> Iterator[Cluster]:
    directory = workdir / "echo"
    directory.mkdir()
    cluster = Cluster(
        directory, ["--factory=tests.integration.scaleout_app.factory", "--prefix=/echo"]
    )
    try:
        cluster.start()
        yield cluster
    finally:
        codes = cluster.stop()
    checkStopped(cluster, codes)


@onceOnly
def test_killedBackendLosesOnlyItsOwnSessionsAndItsReturnLosesNone(
    echoCluster: Cluster, node: NodeClient
) -> None:
    cluster = echoCluster
    url = cluster.url("/echo")

    def openGroup(group: str) -> list[dict[str, Any]]:
        answer = node.call(
            cmd="open", group=group, url=url, transports=NODE_TRANSPORTS,
            per=PER_TRANSPORT, who=True,
        )  # fmt: skip
        sessions: list[dict[str, Any]] = answer["sessions"]
        assert [s for s in sessions if s["state"] != "open"] == []
        assert all(s["actual"] == s["transport"] for s in sessions), sessions
        return sessions

    def echo(group: str) -> dict[str, str]:
        results: dict[str, str] = node.call(cmd="echo", group=group, count=ECHOES)["results"]
        return results

    # All up: every transport echoes in order, and the sessions spread over the backends.
    before = openGroup("A")
    spread = perBackend(before)
    assert set(spread) == set(cluster.names), spread
    assert failures(echo("A")) == {}

    # Kill the busiest backend.
    victim = max(spread, key=lambda name: spread[name])
    onVictim = {s["name"] for s in before if s["backend"] == victim}
    cluster.backends[victim].kill()
    marked: list[float] = []
    watcher = threading.Thread(
        target=lambda: marked.append(cluster.waitForStatus({victim: "DOWN"}, timeout=10))
    )
    watcher.start()
    # New sessions succeed at once, before the health check has noticed (redispatch).
    early = openGroup("B0")
    results = echo("A")
    lostA = {name for name, result in results.items() if result != "ok"}
    assert lostA <= onVictim, (lostA - onVictim, results)
    watcher.join()
    assert marked, f"HAProxy did not mark {victim} down"
    detection = marked[0]
    assert failures(echo("B0")) == {}

    # While it is down: new sessions land on the others only, and work.
    during = openGroup("B")
    assert victim not in perBackend(during), perBackend(during)
    assert failures(echo("B")) == {}

    # It comes back: every session opened meanwhile keeps working.
    cluster.startBackend(victim)
    returned = cluster.waitForStatus({victim: "UP"}, timeout=15)
    resultsB = echo("B")
    resultsB0 = echo("B0")
    lostOnReturn = failures(resultsB) | failures(resultsB0)
    survivorsA = {name: result for name, result in echo("A").items() if name not in lostA}
    assert failures(survivorsA) == {}
    # ... and new sessions use it again.
    after = openGroup("C")
    assert failures(echo("C")) == {}

    report(
        f"scale-out, shipped haproxy.cfg, {len(NODE_TRANSPORTS)} node transports x "
        f"{PER_TRANSPORT}: sessions per backend {spread}; killed {victim} "
        f"({len(onVictim)} sessions on it, {len(lostA)} of them lost, 0 on the others); "
        f"marked DOWN {detection:.1f} s after the kill; opened "
        f"{len(early) + len(during)} sessions while it was dead or down "
        f"({perBackend(early + during)}); it came back UP after {returned:.1f} s: "
        f"{len(lostOnReturn)} of those sessions lost; new sessions afterwards "
        f"{perBackend(after)}"
    )
    assert lostOnReturn == {}, lostOnReturn
    assert victim in perBackend(after), perBackend(after)

    # Draining it from the stats page (the first step of a rolling restart): new sessions
    # go elsewhere, its own sessions go on.
    cluster.setState(victim, "drain")
    drained = openGroup("D")
    assert victim not in perBackend(drained), perBackend(drained)
    assert failures(echo("C")) == {}
    cluster.setState(victim, "ready")
    cluster.waitForStatus({victim: "UP"}, timeout=5)
    for group in ("A", "B0", "B", "C", "D"):
        node.call(cmd="close", group=group)


# -- the demo chat across processes, through Redis ---------------------------------------------


@pytest.fixture(scope="module")
def sockjsURL() -> Iterator[str]:
    """sockjs-client's browser build, served from 127.0.0.1 for the demo page."""
    directory = ROOT / "tests" / "browser" / "node_modules" / "sockjs-client" / "dist"
    if not (directory / "sockjs.min.js").exists():
        unavailable("no sockjs-client: run `npm ci` in tests/browser (tools/test.sh does)")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sockjs.min.js"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def chatCluster(workdir: Path, sockjsURL: str, reactorName: str) -> Iterator[Cluster]:
    directory = workdir / "chat"
    directory.mkdir()
    cluster = Cluster(
        directory,
        ["--redis={redis}", f"--sockjs-url={sockjsURL}"],
        redis=True,
        reactor=reactorName,
    )
    try:
        cluster.start()
        yield cluster
    finally:
        codes = cluster.stop()
    checkStopped(cluster, codes)


def openChat(node: NodeClient, cluster: Cluster, group: str) -> list[str]:
    """One chat client straight on each backend, and one per transport through HAProxy."""
    names: list[str] = []
    for index, name in enumerate(cluster.names):
        transport = NODE_TRANSPORTS[index % len(NODE_TRANSPORTS)]
        answer = node.call(
            cmd="open", group=group, url=cluster.backendURL(name, "/chat"),
            transports=[transport], per=1, who=False,
        )  # fmt: skip
        names += [s["name"] for s in answer["sessions"] if s["state"] == "open"]
    answer = node.call(
        cmd="open", group=group, url=cluster.url("/chat"), transports=NODE_TRANSPORTS,
        per=1, who=False,
    )  # fmt: skip
    names += [s["name"] for s in answer["sessions"] if s["state"] == "open"]
    assert len(names) == len(cluster.names) + len(NODE_TRANSPORTS)
    return names


def checkOrder(received: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per receiver, the senders whose messages arrived out of order or twice."""
    bad: dict[str, list[str]] = {}
    for receiver, messages in received.items():
        last: dict[str, int] = {}
        for message in messages:
            sender, _, number = message.rpartition("#")
            if int(number) <= last.get(sender, -1):
                bad.setdefault(receiver, []).append(message)
            last[sender] = int(number)
    return bad


def test_chatAcrossProcessesSurvivesARedisRestart(chatCluster: Cluster, node: NodeClient) -> None:
    cluster = chatCluster
    names = openChat(node, cluster, "chat")
    count, interval = 40, 25

    # Everyone sees everyone, in order.
    node.call(cmd="chat", group="chat", count=5, interval=10)
    warmup = node.call(cmd="collect", group="chat", expect=5 * len(names), quiet=1000)
    assert checkOrder(warmup["received"]) == {}
    assert all(len(m) == 5 * len(names) for m in warmup["received"].values()), warmup
    node.call(cmd="close", group="chat")

    # Again, with redis-server restarted in the middle.
    names = openChat(node, cluster, "restart")
    node.call(cmd="chat", group="restart", count=count, interval=interval)
    time.sleep(count * interval / 1000 / 3)
    assert cluster.redis is not None
    down = time.monotonic()
    assert cluster.redis.stop() == 0
    cluster.startRedis()
    restartTook = time.monotonic() - down
    collected = node.call(
        cmd="collect", group="restart", expect=count * len(names), quiet=3000, timeout=60
    )
    received: dict[str, list[str]] = collected["received"]
    expected = count * len(names) * len(names)
    delivered = sum(len(messages) for messages in received.values())
    assert all(state == "open" for state in collected["states"].values()), collected["states"]
    assert all(process.alive() for process in cluster.backends.values())
    assert checkOrder(received) == {}
    # Recovered by itself: after the restart, everything is delivered to everyone again.
    for receiver, messages in received.items():
        for sender in names:
            assert f"{sender}#{count - 1}" in messages, (receiver, sender)
    report(
        f"scale-out chat ({cluster.reactor} reactor): {len(names)} clients on 3 processes "
        f"(one straight on each, "
        f"{len(NODE_TRANSPORTS)} through HAProxy), {count} messages each, redis-server "
        f"stopped and started mid-run ({restartTook:.2f} s from SIGTERM to PONG): "
        f"{delivered} of {expected} "
        f"deliveries, in order, no duplicate"
    )
    assert delivered == expected
    node.call(cmd="close", group="restart")


@onceOnly
@pytest.mark.browser
@pytest.mark.parametrize("transport", ["iframe-htmlfile", "jsonp-polling", "xhr-streaming"])
def test_browserTransportsThroughHAProxy(
    chatCluster: Cluster, chromium: Any, transport: str
) -> None:
    """The demo page through HAProxy in Chromium: echo in order and the shared chat."""
    page = chromium.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(chatCluster.url("/"))
        for box in page.locator("#transports input").all():
            if box.get_attribute("value") != transport:
                box.uncheck()
        page.click("#connect")
        for pane in ("#echo", "#chat"):
            page.wait_for_function(
                "pane => document.querySelector(pane + ' .state').textContent === 'open'",
                arg=pane,
            )
            assert page.text_content(f"{pane} .transport") == transport
        sent = [f"{transport} {n}" for n in range(ECHOES)]
        for text in sent:
            page.fill("#echo input", text)
            page.press("#echo input", "Enter")
        page.locator("#echo .log .in", has_text=sent[-1]).wait_for()
        echoed = [t for t in page.locator("#echo .log .in").all_text_contents() if t in sent]
        assert echoed == sent
        page.fill("#chat input", f"chat over {transport}")
        page.press("#chat input", "Enter")
        page.locator("#chat .log .in", has_text=f"chat over {transport}").wait_for()
    finally:
        page.close()


# -- the one-command example -------------------------------------------------------------------


@onceOnly
def test_clusterExampleRunsTheWholeThing(workdir: Path, node: NodeClient) -> None:
    directory = workdir / "example"
    directory.mkdir()
    port, stats, base, redis = freePort(), freePort(), freePort(), freePort()
    runner = Process(
        "cluster.py",
        [
            sys.executable,
            str(ROOT / "examples" / "deploy" / "cluster.py"),
            f"--port={port}",
            f"--stats-port={stats}",
            f"--redis-port={redis}",
            f"--backend-ports={base},{freePort()},{freePort()}",
            f"--workdir={directory}",
        ],
        directory / "cluster.log",
        environment(),
    )
    try:
        waitUntil(
            lambda: "ready" in runner.tail() or not runner.alive(), "the cluster is ready", 60
        )
        assert runner.alive(), runner.tail()
        answer = node.call(
            cmd="open", group="example", url=f"http://127.0.0.1:{port}/chat",
            transports=["websocket", "xhr-polling", "xhr-streaming"], per=2, who=False,
        )  # fmt: skip
        assert all(s["state"] == "open" for s in answer["sessions"]), answer
        clients = len(answer["sessions"])
        node.call(cmd="chat", group="example", count=3, interval=10)
        got = node.call(cmd="collect", group="example", expect=3 * clients, quiet=1000)
        assert all(len(m) == 3 * clients for m in got["received"].values()), got
        assert checkOrder(got["received"]) == {}
        node.call(cmd="close", group="example")
        # A crashed process is started again.
        pids = dict(re.findall(r"started (\w+) pid (\d+)", runner.tail(100)))
        assert set(pids) >= {"redis", "s1", "s2", "s3", "haproxy"}, runner.tail()
        os.kill(int(pids["s2"]), signal.SIGKILL)
        waitUntil(
            lambda: len(re.findall(r"started s2 pid", runner.tail(100))) == 2,
            "the runner restarts s2",
            30,
        )
    finally:
        runner.popen.send_signal(signal.SIGINT)
        try:
            code = runner.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            runner.kill()
            raise
    assert code == 0, runner.tail()
    assert not redisPing(redis)
    pids = {int(pid) for pid in re.findall(r"started \w+ pid (\d+)", runner.tail(200))}
    for pid in pids:
        assert not _running(pid), f"process {pid} outlived the runner"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return True
