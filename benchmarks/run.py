#!/usr/bin/env python3
"""Benchmark txsockjs side by side with its peers, in one run, on this machine.

    python benchmarks/run.py            # the full run (about 15 minutes on 2 cores)
    python benchmarks/run.py --quick    # a smoke run, well under a minute

It installs what it needs into benchmarks/.peers/ (sockjs-node 0.3.24 from npm, aiohttp's
`sockjs` from PyPI in a virtualenv), starts each server as its own process on 127.0.0.1,
drives it with benchmarks/loadgen.js (Node.js, raw sockets), pins the server and the load
generator to different cores when there are two, and writes a table and a JSON file into
benchmarks/results/. See benchmarks/README.rst.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS = HERE / ".peers"
RESULTS = HERE / "results"
SERVERS_DIR = HERE / "servers"
LOADGEN = HERE / "loadgen.js"

SOCKJS_NODE_VERSION = "0.3.24"
WS_VERSION = "8.23.1"
AIOHTTP_SOCKJS_VERSION = "0.13.0"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------- cores
def core_plan() -> tuple[set[int] | None, set[int] | None]:
    """(server cores, load generator cores): apart when the machine has two or more."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None, None
    if len(cores) < 2:
        return None, None
    return {cores[0]}, {cores[1]}


def preexec(cores: set[int] | None) -> Callable[[], None]:
    def run() -> None:
        os.setsid()
        if cores is not None:
            os.sched_setaffinity(0, cores)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    return run


# ------------------------------------------------------------------------- /proc
def cpu_ticks(pid: int) -> tuple[int, int]:
    """(user, system) clock ticks of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def machine_busy_ticks() -> int:
    """Busy clock ticks of all cores together (everything but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE // 1024


# ------------------------------------------------------------------------- installs
def run_quiet(cmd: list[str], **kw: Any) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}")


def ensure_npm_peer(package: str, version: str, what: str) -> str | None:
    """npm ``package@version`` in benchmarks/.peers/node (installed once); its version."""
    if shutil.which("node") is None:
        return None
    pkg = PEERS / "node" / "node_modules" / package / "package.json"
    if pkg.exists() and json.loads(pkg.read_text())["version"] == version:
        return version
    if shutil.which("npm") is None:
        return None
    log(f"installing {what} {version} into {PEERS / 'node'}")
    (PEERS / "node").mkdir(parents=True, exist_ok=True)
    (PEERS / "node" / "package.json").write_text('{"private": true}\n')
    # --no-save leaves no package-lock behind, so install every pinned package at once:
    # npm would prune one installed earlier that the command does not name.
    pinned = {"sockjs": SOCKJS_NODE_VERSION, "ws": WS_VERSION}
    run_quiet(
        ["npm", "install", "--no-audit", "--no-fund", "--no-save"]
        + [f"{name}@{v}" for name, v in pinned.items()],
        cwd=PEERS / "node",
    )
    return version


def ensure_node_peer() -> str | None:
    return ensure_npm_peer("sockjs", SOCKJS_NODE_VERSION, "sockjs-node")


def ensure_ws_peer() -> str | None:
    return ensure_npm_peer("ws", WS_VERSION, "node's ws")


def venv_python() -> Path:
    return PEERS / "venv" / "bin" / "python"


def ensure_aiohttp_peer() -> str | None:
    py = venv_python()
    probe = "import importlib.metadata as m; print(m.version('sockjs'), m.version('aiohttp'))"
    if py.exists():
        out = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.split()[0] == AIOHTTP_SOCKJS_VERSION:
            return "sockjs {}, aiohttp {}".format(*out.stdout.split())
    log(f"installing aiohttp sockjs {AIOHTTP_SOCKJS_VERSION} into {PEERS / 'venv'}")
    run_quiet([sys.executable, "-m", "venv", str(PEERS / "venv")])
    run_quiet([str(py), "-m", "pip", "install", "-q", f"sockjs=={AIOHTTP_SOCKJS_VERSION}"])
    out = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=True)
    return "sockjs {}, aiohttp {}".format(*out.stdout.split())


def ensure_pyspy() -> Path:
    spy = PEERS / "venv" / "bin" / "py-spy"
    if not spy.exists():
        if not venv_python().exists():
            run_quiet([sys.executable, "-m", "venv", str(PEERS / "venv")])
        log("installing py-spy into " + str(PEERS / "venv"))
        run_quiet([str(venv_python()), "-m", "pip", "install", "-q", "py-spy"])
    return spy


def summarize_profile(raw: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    selfc: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        count = int(n)
        total += count
        frames = []
        for fr in stack.split(";"):
            name, _, where = fr.partition(" (")
            path = where.rstrip(")").rsplit(":", 1)[0]
            parts = path.split("/")
            short = "/".join(parts[-2:]) if len(parts) > 1 else path
            frames.append(f"{name} ({short})")
        if frames:
            selfc[frames[-1]] = selfc.get(frames[-1], 0) + count
        for f in set(frames):
            incl[f] = incl.get(f, 0) + count

    def pct(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, v / total) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]]

    return {"samples": total, "self": pct(selfc), "inclusive": pct(incl)}


def run_profiles(
    specs: list[ServerSpec],
    names: list[str],
    wls: list[Workload],
    server_cores: set[int] | None,
    loadgen_cores: set[int] | None,
    logdir: Path,
) -> dict[str, Any]:
    """Profile the named Python servers with py-spy while each workload runs: the measuring
    window of a throughput workload, the idle window of an idle one (a fresh process with
    the workload's heartbeat). Separate from the measured rounds: sampling costs the server
    some speed. py-spy leaves out samples of a thread waiting for I/O, so the shares are of
    the time the server was busy."""
    spy = ensure_pyspy()
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in names or spec.name in ("sockjs-node", "ws-raw"):
            continue
        shared: Server | None = None
        try:
            for w in wls:
                if spec.raw and not w.ws:
                    continue
                if w.idle:
                    server = Server(spec, w.args.get("heartbeat", 5), server_cores, logdir)
                else:
                    if shared is None:
                        shared = Server(spec, 25, server_cores, logdir)
                    server = shared
                raw = logdir / f"profile-{spec.name}-{w.name.replace(' ', '_')}.txt"
                dur = w.args.get("idle" if w.idle else "duration", 4)
                cmd = [
                    str(spy),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--duration",
                    str(int(max(1, dur))),
                    "--rate",
                    "250",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                ]
                holder: dict[str, subprocess.Popen[bytes]] = {}

                def start_spy(
                    cmd: list[str] = cmd, holder: dict[str, subprocess.Popen[bytes]] = holder
                ) -> None:
                    holder["p"] = subprocess.Popen(
                        cmd,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        preexec_fn=preexec(loadgen_cores),
                    )

                log(f"profiling {spec.name}: {w.name} ...")
                try:
                    run_loadgen(server, w, loadgen_cores, on_measure_start=start_spy)
                    if "p" in holder:
                        holder["p"].wait(60)
                finally:
                    if w.idle:
                        server.stop()
                if raw.exists():
                    summary_ = summarize_profile(raw)
                    out.setdefault(spec.name, {})[w.name] = summary_
                    txt = raw.with_name(raw.stem + "-top.txt")
                    with txt.open("w") as f:
                        f.write(f"{spec.name} {w.name}: {summary_['samples']} samples\n\nself:\n")
                        for k, v in summary_["self"]:
                            f.write(f"  {v:6.1%}  {k}\n")
                        f.write("\ninclusive:\n")
                        for k, v in summary_["inclusive"]:
                            f.write(f"  {v:6.1%}  {k}\n")
                    log(f"   {txt}")
        finally:
            if shared is not None:
                shared.stop()
    return out


def txsockjs_command(
    port: int, heartbeat: float, tree: Path = REPO
) -> tuple[list[str], str] | None:
    """How to start the txsockjs echo of source tree ``tree``: the twistd plugin once it
    exists, else the conformance server of txsockjs.testing. Returns (argv, description) or
    None."""
    env = server_env(tree)
    helptext = subprocess.run(
        [sys.executable, "-m", "twisted", "sockjs", "--help"],
        capture_output=True,
        text=True,
        cwd=tree,
        env=env,
    )
    if helptext.returncode == 0 and "--listen" in helptext.stdout:
        argv = [sys.executable, "-m", "twisted", "sockjs"]
        # twistd -n sockjs; `python -m twisted` runs the same plugin without daemonising
        argv = [
            shutil.which("twistd") or "twistd",
            "-n",
            "--pidfile=",
            "-l",
            "-",
            "sockjs",
            "--listen",
            f"tcp:{port}:interface=127.0.0.1:backlog=4096",
        ]
        for opt in ("--heartbeat-delay", "--heartbeat", "--heartbeat_delay"):
            if opt in helptext.stdout:
                argv += [opt, str(heartbeat)]
                break
        return argv, "twistd -n sockjs"
    probe = subprocess.run(
        [sys.executable, "-c", "import txsockjs.testing.conformance"],
        capture_output=True,
        text=True,
        cwd=tree,
        env=env,
    )
    if probe.returncode == 0:
        argv = [sys.executable, "-m", "txsockjs.testing.conformance", "--port", str(port)]
        h = subprocess.run(
            argv[:3] + ["--help"], capture_output=True, text=True, cwd=tree, env=env
        )
        for opt in ("--heartbeat-delay", "--heartbeat", "--heartbeat_delay"):
            if opt in h.stdout:
                argv += [opt, str(heartbeat)]
                break
        return argv, "python -m txsockjs.testing.conformance"
    return None


def server_env(tree: Path = REPO) -> dict[str, str]:
    """The environment of a server process: txsockjs (and its twistd plugin) from ``tree``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONDEVMODE", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ------------------------------------------------------------------------- servers
@dataclass
class ServerSpec:
    name: str
    label: str
    command: Callable[[int, float], list[str] | None]
    raw: bool = False  # plain websocket echo, no SockJS
    version: str = ""
    heartbeat_ok: bool = True  # can it be given the idle workload's heartbeat?
    tree: Path = REPO  # the source tree a txsockjs server runs from (working dir, PYTHONPATH)


def txsockjs_spec(name: str, tree: Path) -> ServerSpec | None:
    """The txsockjs echo of source tree ``tree`` as server ``name``."""
    found = txsockjs_command(0, 5, tree)
    if found is None:
        log(f"{name}: no twistd plugin `sockjs` and no txsockjs.testing.conformance; skipped")
        return None
    argv0, how = found
    hb_ok = any(a.startswith("--heartbeat") for a in argv0)

    def tx(port: int, hb: float) -> list[str] | None:
        got = txsockjs_command(port, hb, tree)
        return got[0] if got else None

    version = how if tree == REPO else f"{how}, {tree}{tree_revision(tree)}"
    return ServerSpec(
        name, f"txsockjs ({how})", tx, version=version, heartbeat_ok=hb_ok, tree=tree
    )


def tree_revision(tree: Path) -> str:
    """`` at <commit>`` when ``tree`` is a git checkout, else nothing."""
    out = subprocess.run(
        ["git", "-C", str(tree), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
    )
    return f" at {out.stdout.strip()}" if out.returncode == 0 and out.stdout.strip() else ""


def parse_trees(values: list[str]) -> list[tuple[str, Path]]:
    """``--tree LABEL=DIR`` (or just ``DIR``, labelled by its folder name) as (server, dir)."""
    trees: list[tuple[str, Path]] = []
    for value in values:
        label, sep, where = value.partition("=")
        if not sep:
            label, where = Path(value).name, value
        path = Path(where).expanduser().resolve()
        if not (path / "txsockjs" / "__init__.py").exists():
            raise SystemExit(f"--tree {value}: {path} holds no txsockjs package")
        name = f"txsockjs@{label}"
        if name in [n for n, _ in trees]:
            raise SystemExit(f"--tree {value}: label {label!r} given twice")
        trees.append((name, path))
    return trees


def build_servers(
    wanted: list[str], trees: list[tuple[str, Path]] | None = None
) -> list[ServerSpec]:
    specs: list[ServerSpec] = []
    for name in wanted:
        if name == "txsockjs":
            spec = txsockjs_spec("txsockjs", REPO)
            if spec is not None:
                specs.append(spec)
            # Other source trees right after it, so that their rounds run side by side.
            for tree_name, tree in trees or []:
                spec = txsockjs_spec(tree_name, tree)
                if spec is not None:
                    specs.append(spec)
        elif name == "autobahn":
            import autobahn

            import twisted

            def ab(port: int, hb: float) -> list[str]:
                return [
                    sys.executable,
                    str(SERVERS_DIR / "autobahn_raw_echo.py"),
                    str(port),
                    str(hb),
                ]

            specs.append(
                ServerSpec(
                    "autobahn",
                    "raw autobahn echo",
                    ab,
                    raw=True,
                    version=f"autobahn {autobahn.__version__}, Twisted {twisted.__version__}",
                )
            )
        elif name == "ws-raw":
            v = ensure_ws_peer()
            if v is None:
                log("ws-raw: node/npm not found; skipped")
                continue

            def wr(port: int, hb: float) -> list[str]:
                return ["node", str(SERVERS_DIR / "ws_raw_echo.js"), str(port), str(hb)]

            node_v = subprocess.run(
                ["node", "--version"], capture_output=True, text=True
            ).stdout.strip()
            specs.append(
                ServerSpec("ws-raw", "raw ws echo", wr, raw=True, version=f"ws {v}, node {node_v}")
            )
        elif name == "sockjs-node":
            v = ensure_node_peer()
            if v is None:
                log("sockjs-node: node/npm not found; skipped")
                continue

            def sn(port: int, hb: float) -> list[str]:
                return ["node", str(SERVERS_DIR / "sockjs_node_echo.js"), str(port), str(hb)]

            node_v = subprocess.run(
                ["node", "--version"], capture_output=True, text=True
            ).stdout.strip()
            specs.append(
                ServerSpec("sockjs-node", "sockjs-node", sn, version=f"sockjs {v}, node {node_v}")
            )
        elif name == "aiohttp":
            v = ensure_aiohttp_peer()

            def ai(port: int, hb: float) -> list[str]:
                return [
                    str(venv_python()),
                    str(SERVERS_DIR / "aiohttp_sockjs_echo.py"),
                    str(port),
                    str(hb),
                ]

            specs.append(ServerSpec("aiohttp", "aiohttp sockjs", ai, version=v or ""))
        else:
            raise SystemExit(f"unknown server {name}")
    return specs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, spec: ServerSpec, heartbeat: float, cores: set[int] | None, logdir: Path):
        self.spec = spec
        self.port = free_port()
        argv = spec.command(self.port, heartbeat)
        if argv is None:
            raise RuntimeError(f"{spec.name}: cannot build its command")
        self.argv = argv
        self.logfile = open(logdir / f"{spec.name}-{self.port}.log", "w")
        self.logfile.write("# " + " ".join(argv) + "\n")
        self.logfile.flush()
        self.proc = subprocess.Popen(
            argv,
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
            cwd=spec.tree,
            env=server_env(spec.tree),
            preexec_fn=preexec(cores),
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.name} exited with {self.proc.returncode}; see {self.logfile.name}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                time.sleep(0.3)  # let it finish starting (imports done lazily on first use)
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.spec.name} did not listen on {self.port} within {timeout}s")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # its own session, started above
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.logfile.close()


# ------------------------------------------------------------------------- workloads
@dataclass
class Workload:
    name: str
    mode: str  # loadgen mode for SockJS servers (ws-raw / idle-ws-raw for the raw one)
    sessions: int
    inflight: int = 1
    idle: bool = False
    ws: bool = True
    args: dict[str, float] = field(default_factory=dict)


def workloads(quick: bool, smoke: bool = False) -> list[Workload]:
    if smoke:  # a few seconds: that the harness still runs, not how fast anything is
        t = {"warmup": 0.1, "duration": 0.5}
        return [
            Workload("ws 10x2", "ws", 10, 2, args=t),
            Workload("xhr-streaming 5", "xhr-streaming", 5, 1, ws=False, args=t),
            Workload("xhr-polling 5", "xhr-polling", 5, 1, ws=False, args=t),
            Workload(
                "idle ws 20",
                "idle-ws",
                20,
                idle=True,
                args={"heartbeat": 0.5, "idle": 1.2, "settle": 0.1},
            ),
        ]
    if quick:
        t = {"warmup": 0.3, "duration": 1.0}
        return [
            Workload("ws 100x4", "ws", 100, 4, args=t),
            Workload("xhr-streaming 20", "xhr-streaming", 20, 1, ws=False, args=t),
            Workload("xhr-polling 20", "xhr-polling", 20, 1, ws=False, args=t),
            Workload(
                "idle ws 200",
                "idle-ws",
                200,
                idle=True,
                args={"heartbeat": 1, "idle": 2.2, "settle": 0.3},
            ),
        ]
    t = {"warmup": 1, "duration": 4}
    idle = {"heartbeat": 5, "idle": 16, "settle": 1}
    return [
        Workload("ws 1x1", "ws", 1, 1, args=t),
        Workload("ws 100x4", "ws", 100, 4, args=t),
        Workload("ws 1000x4", "ws", 1000, 4, args=t),
        Workload("xhr-streaming 100", "xhr-streaming", 100, 1, ws=False, args=t),
        Workload("xhr-polling 100", "xhr-polling", 100, 1, ws=False, args=t),
        Workload("idle ws 10000", "idle-ws", 10000, idle=True, args=idle),
        Workload(
            "idle xhr-streaming 10000", "idle-xhr-streaming", 10000, idle=True, ws=False, args=idle
        ),
    ]


def run_loadgen(
    server: Server,
    wl: Workload,
    cores: set[int] | None,
    on_measure_start: Callable[[], None] | None = None,
) -> dict[str, Any]:
    mode = wl.mode
    if server.spec.raw:
        mode = {"ws": "ws-raw", "idle-ws": "idle-ws-raw"}[mode]
    argv = [
        "node",
        str(LOADGEN),
        "--port",
        str(server.port),
        "--mode",
        mode,
        "--sessions",
        str(wl.sessions),
        "--inflight",
        str(wl.inflight),
        "--timeout",
        str(20 + wl.sessions / 200),
    ]
    for k, v in wl.args.items():
        argv += [f"--{k}", str(v)]
    pid = server.pid
    rss_before = rss_kb(pid)
    marks: dict[str, Any] = {}
    result: dict[str, Any] = {}
    lg = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec(cores)
    )
    assert lg.stdout is not None
    for line in lg.stdout:
        t = time.monotonic()
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        kind = ev.get("event")
        if kind in ("measure_start", "measure_end", "idle_start", "idle_end"):
            marks[kind] = (
                t,
                cpu_ticks(pid),
                rss_kb(pid),
                machine_busy_ticks(),
                sum(cpu_ticks(lg.pid)),
                sum(cpu_ticks(os.getpid())),
            )
            if kind == "idle_start":
                marks["idle_start_event"] = ev
            if kind in ("measure_start", "idle_start") and on_measure_start is not None:
                on_measure_start()
        elif kind in ("result", "error"):
            result = ev
    try:
        lg.wait(30)
    except subprocess.TimeoutExpired:
        lg.kill()
        lg.wait()
    err = lg.stderr.read() if lg.stderr else ""
    if lg.returncode != 0 or result.get("event") != "result":
        return {
            "failed": True,
            "error": result.get("error") or err[-500:] or f"exit {lg.returncode}",
            "error_samples": result.get("error_samples"),
        }
    start, end = ("idle_start", "idle_end") if wl.idle else ("measure_start", "measure_end")
    (t0, (u0, s0), rss0, m0, l0, o0), (t1, (u1, s1), rss1, m1, l1, o1) = marks[start], marks[end]
    cpu = (u1 - u0 + s1 - s0) / CLK_TCK
    wall = t1 - t0
    # CPU that neither the server, the load generator nor this script used: other work on
    # the machine, which makes a measurement noisy (shown in the table as "other CPU")
    foreign = ((m1 - m0) - (u1 - u0 + s1 - s0) - (l1 - l0) - (o1 - o0)) / CLK_TCK
    out = dict(result)
    out.pop("event", None)
    out["other_cpu_share"] = max(0.0, foreign / wall) if wall else None
    out["server_cpu_s"] = cpu
    out["server_cpu_share"] = cpu / wall if wall else None
    out["server_kernel_share"] = (s1 - s0) / (u1 - u0 + s1 - s0) if (u1 - u0 + s1 - s0) else None
    if wl.idle:
        opened = result.get("opened") or wl.sessions
        out["rss_before_kb"] = rss_before
        out["rss_idle_kb"] = rss1
        out["kb_per_session"] = (rss0 - rss_before) / opened
    else:
        msgs = result["messages"]
        out["server_cpu_s_per_100k"] = cpu / msgs * 1e5 if msgs else None
    out["loadgen_bound"] = (result.get("loadgen_cpu_share") or 0) > 0.9
    return out


# ------------------------------------------------------------------------- report
def fmt(v: Any, spec: str = ",.0f") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    return format(v, spec)


PEER_ORDER = ["sockjs-node", "aiohttp", "ws-raw", "autobahn", "txsockjs"]


def render(report: dict[str, Any]) -> str:
    res = report["results"]
    servers = report["servers"]
    lines = []
    names = [s["name"] for s in servers]
    peers = [p for p in PEER_ORDER if p in names]
    head = [
        "workload",
        "server",
        "msgs/s",
        "p50 ms",
        "p99 ms",
        "srv CPU s/100k",
        "srv kernel",
        "loadgen CPU",
        "other CPU",
    ] + [f"÷ {p}" for p in peers]
    rows = [head]
    for wl in report["workloads"]:
        if wl["idle"]:
            continue
        for name in names:
            r = res.get(wl["name"], {}).get(name)
            if r is None:
                continue
            if r.get("failed"):
                rows.append(
                    [wl["name"], name, "failed: " + str(r.get("error"))[:60]]
                    + [""] * (len(head) - 3)
                )
                continue
            ratios = []
            for p in peers:
                pr = res.get(wl["name"], {}).get(p)
                if p == name or not pr or pr.get("failed") or not pr.get("msgs_per_s"):
                    ratios.append("")
                else:
                    ratios.append(f"{r['msgs_per_s'] / pr['msgs_per_s']:.2f}x")
            rows.append(
                [
                    wl["name"],
                    name,
                    fmt(r["msgs_per_s"]),
                    fmt(r["p50_ms"], ".2f"),
                    fmt(r["p99_ms"], ".2f"),
                    fmt(r.get("server_cpu_s_per_100k"), ".2f"),
                    fmt(r.get("server_kernel_share"), ".0%"),
                    fmt(r.get("loadgen_cpu_share"), ".0%")
                    + (" (bound)" if r.get("loadgen_bound") else ""),
                    fmt(r.get("other_cpu_share"), ".0%"),
                ]
                + ratios
            )
    if len(rows) > 1:
        lines.append(table(rows))
    idle_rows = [
        [
            "workload",
            "server",
            "opened",
            "opens/s",
            "kB/session",
            "idle srv CPU",
            "heartbeats on time",
            "max hb dev ms",
            "loadgen CPU",
            "other CPU",
        ]
    ]
    for wl in report["workloads"]:
        if not wl["idle"]:
            continue
        for name in names:
            r = res.get(wl["name"], {}).get(name)
            if r is None:
                continue
            if r.get("failed"):
                idle_rows.append(
                    [wl["name"], name, "failed: " + str(r.get("error"))[:60]] + [""] * 7
                )
                continue
            idle_rows.append(
                [
                    wl["name"],
                    name,
                    fmt(r["opened"]),
                    fmt(r["opens_per_s"]),
                    fmt(r["kb_per_session"], ".1f"),
                    fmt(r["server_cpu_share"], ".1%"),
                    fmt(r["heartbeats_on_time"]) + f" ({r['heartbeat_late']} late/"
                    f"{r['heartbeat_intervals']}, {r['first_heartbeat_late']} first late, "
                    f"{r['sessions_missing_heartbeats']} missing)",
                    fmt(r["heartbeat_max_dev_ms"], ".0f"),
                    fmt(r.get("loadgen_cpu_share"), ".0%"),
                    fmt(r.get("other_cpu_share"), ".0%"),
                ]
            )
    if len(idle_rows) > 1:
        if lines:
            lines.append("")
        lines.append(table(idle_rows))
    targets = report.get("targets")
    if targets:
        lines.append("")
        lines.append(
            table(
                [["target (txsockjs)", "measured", "met"]]
                + [[t["target"], t["measured"], fmt(t["met"])] for t in targets]
            )
        )
    return "\n".join(lines)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, r in enumerate(rows):
        out.append(
            "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
        )
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """
    The performance issues' targets, checked on this run's numbers (txsockjs only): those of
    the first performance issue ("earlier") and of issue 14, each with the issue it is from.
    """
    res = report["results"]
    out: list[dict[str, Any]] = []

    def get(wl: str, server: str) -> dict[str, Any] | None:
        r = res.get(wl, {}).get(server)
        return None if r is None or r.get("failed") else r

    def add(issue: str, target: str, measured: str, met: bool) -> None:
        out.append({"target": f"{issue}: {target}", "measured": measured, "met": met})

    def ratio(issue: str, wl: str, peer: str, want: float) -> None:
        a, b = get(wl, "txsockjs"), get(wl, peer)
        if a and b and b.get("msgs_per_s"):
            x = a["msgs_per_s"] / b["msgs_per_s"]
            add(issue, f"{wl} >= {want}x {peer}", f"{x:.2f}x", x >= want)

    names = [w["name"] for w in report["workloads"]]
    for wl in ("ws 100x4", "ws 1000x4"):
        ratio("earlier", wl, "sockjs-node", 1.0)
        ratio("earlier", wl, "autobahn", 2.0)
    for wl in [n for n in names if n.startswith("xhr-")]:
        ratio("earlier", wl, "aiohttp", 1.0)
        if wl.startswith("xhr-streaming"):
            ratio("earlier", wl, "sockjs-node", 0.5)
    # issue 14: the HTTP transports at sockjs-node's speed, the websocket at raw ws's.
    for wl in [n for n in names if n.startswith("xhr-")]:
        ratio("issue 14", wl, "sockjs-node", 1.0)
    for wl in ("ws 100x4", "ws 1000x4"):
        ratio("issue 14", wl, "ws-raw", 1.0)
        ratio("issue 14", wl, "sockjs-node", 1.4)
    both = "earlier + issue 14"
    for w in report["workloads"]:
        if w["idle"] and w["ws"]:
            r = get(w["name"], "txsockjs")
            if r:
                rounds = [x for x in r.get("rounds", []) if not x.get("failed")]
                each = (
                    " (rounds: " + ", ".join(f"{x['server_cpu_share']:.1%}" for x in rounds) + ")"
                    if len(rounds) > 1
                    else ""
                )
                add(
                    both,
                    f"{w['name']} < 12 kB/session",
                    f"{r['kb_per_session']:.1f} kB",
                    r["kb_per_session"] < 12,
                )
                add(
                    both,
                    f"{w['name']} < 3% of a core idle, every run",
                    f"{r['server_cpu_share']:.1%}{each}",
                    r["server_cpu_share"] < 0.03,
                )
                add(
                    both,
                    f"{w['name']} every heartbeat within 0.5 s",
                    f"{r['heartbeat_late']} late of {r['heartbeat_intervals']}, "
                    f"max dev {r['heartbeat_max_dev_ms']:.0f} ms, "
                    f"{r['first_heartbeat_late']} first late (max "
                    f"{r['first_heartbeat_max_ms'] / 1000:.2f} s after open), "
                    f"{r['sessions_missing_heartbeats']} missing",
                    bool(r["heartbeats_on_time"]),
                )
    r = get("ws 1000x4", "txsockjs")
    if r and r.get("p50_ms"):
        x = r["p99_ms"] / r["p50_ms"]
        add(both, "ws 1000x4 p99 <= 3x p50", f"{x:.2f}x", x <= 3)
    return out


# ------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="small counts, short windows (< 1 minute)"
    )
    ap.add_argument(
        "--busy",
        type=float,
        default=0.3,
        help="other processes' CPU share (of one core) above which a round is run again",
    )
    ap.add_argument(
        "--retries",
        type=int,
        help="most extra tries of a busy round (default 2; 1 with --quick, 0 with --smoke)",
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="tiny counts, a few seconds per server: checks that the harness runs",
    )
    ap.add_argument(
        "--servers",
        default="txsockjs,ws-raw,autobahn,sockjs-node,aiohttp",
        help="comma-separated subset of txsockjs,ws-raw,autobahn,sockjs-node,aiohttp",
    )
    ap.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="also run the txsockjs of source tree DIR as server txsockjs@LABEL, interleaved "
        "with the others round by round (repeatable; e.g. before=/tmp/bench-before)",
    )
    ap.add_argument(
        "--idle-rounds",
        type=int,
        default=1,
        help="run each idle workload this many times per server, interleaved server by "
        "server (a fresh process each); the round with the most server CPU is shown",
    )
    ap.add_argument(
        "--workloads",
        default="",
        help="comma-separated substrings; run only workloads whose name contains one",
    )
    ap.add_argument("--duration", type=float, help="override the measuring window (s)")
    ap.add_argument(
        "--rounds",
        type=int,
        help="rounds of the throughput workloads (best kept); default 3, 1 with --quick",
    )
    ap.add_argument("--idle-sessions", type=int, help="override the idle session count")
    ap.add_argument(
        "--profile",
        nargs="?",
        const="txsockjs",
        default="",
        help="after measuring, profile these Python servers (default txsockjs) with "
        "py-spy under each throughput workload; stacks go to the logs folder",
    )
    ap.add_argument("--out", type=Path, help="JSON output path (default benchmarks/results/...)")
    ap.add_argument(
        "--require", default="", help="comma-separated servers that must run (else exit 1)"
    )
    args = ap.parse_args()

    if shutil.which("node") is None:
        raise SystemExit("benchmarks need Node.js (node) for the load generator")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    logdir = RESULTS / f"logs-{stamp}"
    logdir.mkdir(parents=True, exist_ok=True)
    server_cores, loadgen_cores = core_plan()
    if loadgen_cores is not None:
        os.sched_setaffinity(0, loadgen_cores)  # this script stays off the server's core

    trees = parse_trees(args.tree)
    wanted = [s for s in args.servers.split(",") if s]
    if trees and "txsockjs" not in wanted:
        wanted.insert(0, "txsockjs")
    specs = build_servers(wanted, trees)
    for req in [r for r in args.require.split(",") if r]:
        if req not in [s.name for s in specs]:
            log(f"required server {req} is not available")
            return 1
    rounds = args.rounds or (1 if args.quick or args.smoke else 3)
    if args.retries is None:
        args.retries = 0 if args.smoke else 1 if args.quick else 2
    wls = workloads(args.quick, args.smoke)
    if args.workloads:
        keys = args.workloads.split(",")
        wls = [w for w in wls if any(k in w.name for k in keys)]
    for w in wls:
        if args.duration and not w.idle:
            w.args["duration"] = args.duration
        if args.idle_sessions and w.idle:
            w.sessions = args.idle_sessions
            w.name = w.name.rsplit(" ", 1)[0] + f" {w.sessions}"

    report: dict[str, Any] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "smoke": args.smoke,
        "rounds": rounds,
        "idle_rounds": args.idle_rounds,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "server_cores": sorted(server_cores) if server_cores else None,
            "loadgen_cores": sorted(loadgen_cores) if loadgen_cores else None,
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        },
        "message_bytes": 100,
        "servers": [
            {"name": s.name, "label": s.label, "version": s.version, "tree": str(s.tree)}
            for s in specs
        ],
        "workloads": [
            {
                "name": w.name,
                "mode": w.mode,
                "sessions": w.sessions,
                "inflight": w.inflight,
                "idle": w.idle,
                "ws": w.ws,
                **w.args,
            }
            for w in wls
        ],
        "results": {},
    }
    results = report["results"]
    # Throughput: one process per server, all started up front (idle ones cost nothing), and
    # the workloads interleaved server by server, ROUNDS times over: whatever else runs on the
    # machine then hits every server alike, and the best round of each is kept.
    running: dict[str, Server] = {}
    try:
        for spec in specs:
            if any(not w.idle and (w.ws or not spec.raw) for w in wls):
                try:
                    running[spec.name] = Server(spec, 25, server_cores, logdir)
                except RuntimeError as e:
                    log(f"{spec.name}: {e}")
                    for w in wls:
                        if not w.idle:
                            results.setdefault(w.name, {})[spec.name] = {
                                "failed": True,
                                "error": str(e),
                            }
        for rnd in range(rounds):
            for w in [w for w in wls if not w.idle]:
                for spec in specs:
                    server = running.get(spec.name)
                    if server is None or (spec.raw and not w.ws):
                        continue
                    if server.proc.poll() is not None:
                        results.setdefault(w.name, {})[spec.name] = {
                            "failed": True,
                            "error": f"server exited ({server.proc.returncode})",
                        }
                        continue
                    log(f"[round {rnd + 1}/{rounds}] {spec.name}: {w.name} ...")
                    r = run_loadgen(server, w, loadgen_cores)
                    log("   " + summary(r))
                    # Other work took a good share of the machine: try again, a few times.
                    for _ in range(args.retries):
                        if r.get("failed") or (r.get("other_cpu_share") or 0) <= args.busy:
                            break
                        keep_best(results.setdefault(w.name, {}), spec.name, r)
                        log(f"   machine busy ({r['other_cpu_share']:.0%} other CPU): again")
                        time.sleep(1)
                        r = run_loadgen(server, w, loadgen_cores)
                        log("   " + summary(r))
                    keep_best(results.setdefault(w.name, {}), spec.name, r)
    finally:
        for server in running.values():
            server.stop()
    # Idle: a fresh process per server and workload, so memory per session is its own;
    # IDLE_ROUNDS times over, server by server, keeping the worst round (most server CPU).
    for w in [w for w in wls if w.idle]:
        for rnd in range(args.idle_rounds):
            for spec in specs:
                if spec.raw and not w.ws:
                    continue
                hb = w.args.get("heartbeat", 5)
                if not spec.heartbeat_ok:
                    log(
                        f"{spec.name}: cannot set its heartbeat; "
                        "the idle workload uses its default"
                    )
                server = None
                try:
                    server = Server(spec, hb, server_cores, logdir)
                    log(f"[idle round {rnd + 1}/{args.idle_rounds}] {spec.name}: {w.name} ...")
                    r = run_loadgen(server, w, loadgen_cores)
                    log("   " + summary(r))
                except RuntimeError as e:
                    log(f"{spec.name}: {e}")
                    r = {"failed": True, "error": str(e)}
                finally:
                    if server is not None:
                        server.stop()
                keep_worst_idle(results.setdefault(w.name, {}), spec.name, r)
    if args.profile:
        report["profiles"] = run_profiles(
            specs, args.profile.split(","), wls, server_cores, loadgen_cores, logdir
        )
    report["targets"] = evaluate_targets(report)
    text = render(report)
    out = (
        args.out
        or RESULTS
        / f"results-{stamp}{'-quick' if args.quick else ''}{'-smoke' if args.smoke else ''}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    (out.with_suffix(".txt")).write_text(text + "\n")
    print(text)
    print(f"\nJSON: {out}\nlogs: {logdir}")
    failed = [
        f"{w}/{s}" for w, by in report["results"].items() for s, r in by.items() if r.get("failed")
    ]
    if failed:
        log("failed: " + ", ".join(failed))
        return 1
    return 0


def keep_best(slot: dict[str, Any], name: str, r: dict[str, Any]) -> None:
    """Keep the round with the most messages/s; remember every round's rate."""
    old = slot.get(name)
    rates = (old or {}).get("rounds_msgs_per_s", []) + [
        None if r.get("failed") else r["msgs_per_s"]
    ]
    if (
        old is None
        or old.get("failed")
        or (not r.get("failed") and r["msgs_per_s"] > old["msgs_per_s"])
    ):
        slot[name] = dict(r)
    slot[name]["rounds_msgs_per_s"] = rates


def keep_worst_idle(slot: dict[str, Any], name: str, r: dict[str, Any]) -> None:
    """Keep the idle round with the most server CPU (a failed one wins); remember each
    round's CPU share, memory per session and heartbeat verdict."""
    old = slot.get(name)
    rounds = (old or {}).get("rounds", []) + [
        {"failed": True}
        if r.get("failed")
        else {
            "server_cpu_share": r["server_cpu_share"],
            "kb_per_session": r["kb_per_session"],
            "heartbeats_on_time": r["heartbeats_on_time"],
            "other_cpu_share": r.get("other_cpu_share"),
        }
    ]
    if (
        old is None
        or r.get("failed")
        or (not old.get("failed") and r["server_cpu_share"] > old["server_cpu_share"])
    ):
        slot[name] = dict(r)
    slot[name]["rounds"] = rounds


def summary(r: dict[str, Any]) -> str:
    if r.get("failed"):
        return f"FAILED: {r.get('error')} {r.get('error_samples') or ''}"
    if "msgs_per_s" in r:
        s = (
            f"{r['msgs_per_s']:,.0f} msg/s p50 {fmt(r['p50_ms'], '.2f')} ms "
            f"p99 {fmt(r['p99_ms'], '.2f')} ms "
            f"srv {fmt(r.get('server_cpu_s_per_100k'), '.2f')} s/100k, "
            f"loadgen {r['loadgen_cpu_share']:.0%}, other {fmt(r.get('other_cpu_share'), '.0%')}"
        )
    else:
        s = (
            f"{r['opened']} open at {r['opens_per_s']:,.0f}/s, "
            f"{r['kb_per_session']:.1f} kB/session, idle CPU {r['server_cpu_share']:.1%}, "
            f"hb late {r['heartbeat_late']}/{r['heartbeat_intervals']} "
            f"first late {r['first_heartbeat_late']} missing {r['sessions_missing_heartbeats']} "
            f"max dev {r['heartbeat_max_dev_ms']:.0f} ms, loadgen {r['loadgen_cpu_share']:.0%}"
        )
    if r.get("errors"):
        s += f" errors {r['errors']}: {r.get('error_samples')}"
    return s


if __name__ == "__main__":
    sys.exit(main())
