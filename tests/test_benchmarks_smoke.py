"""
The benchmark harness (benchmarks/run.py) still runs against txsockjs: a few seconds with tiny
counts. It checks that every workload completes without a protocol error, never how fast
anything is: speed targets live in the benchmark's own report, not in the tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("node") is None, reason="the load generator runs on Node.js")
def test_benchmark_harness_smoke(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--smoke",
            "--servers",
            "txsockjs",
            "--require",
            "txsockjs",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    workloads = {w["name"]: w for w in report["workloads"]}
    assert workloads, "no workload ran"
    for name, by_server in report["results"].items():
        result = by_server["txsockjs"]
        assert not result.get("failed"), (name, result)
        assert result["errors"] == 0, (name, result["error_samples"])
        if workloads[name]["idle"]:
            assert result["opened"] == workloads[name]["sessions"]
            assert result["kb_per_session"] is not None
        else:
            assert result["messages"] > 0
            assert result["server_cpu_s_per_100k"] is not None
    assert (tmp_path / "smoke.txt").read_text().startswith("|")
