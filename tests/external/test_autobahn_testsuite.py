"""
Autobahn|Testsuite (RFC 6455 conformance) against txsockjs's raw websocket endpoint.

``wstest -m fuzzingclient`` runs every case of the suite but 9.* (large-message limits),
12.* and 13.* (permessage-deflate, which txsockjs does not offer) against
``twistd -n sockjs``'s ``/echo/websocket``, and the test fails if any case's behavior or
closing behavior is FAILED. The report is copied to tests/external/artifacts/autobahn/<agent>/
(index.html is the overview) and the counts are printed in pytest's terminal summary.

For comparison, the same run against other servers (environment variables)::

    AUTOBAHN_SERVER=reference python3 -m pytest tests/external   # autobahn's own echo server
    AUTOBAHN_URL=ws://127.0.0.1:9000/x AUTOBAHN_AGENT=mine python3 -m pytest tests/external

``AUTOBAHN_CASES`` and ``AUTOBAHN_EXCLUDE`` (comma-separated, e.g. ``1.*,2.*``) replace the
spec's case lists.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import time
from collections import Counter
from typing import Any

import pytest

from .conftest import AUTOBAHN_TOOLS, Server, Wstest, report

#: The spec template; the test fills in the URL, agent and output folder.
SPEC_TEMPLATE = AUTOBAHN_TOOLS / "fuzzingclient.json"
#: Where each run's report is copied, per agent (gitignored).
ARTIFACTS = pathlib.Path(__file__).resolve().parent / "artifacts" / "autobahn"
#: The whole wstest run: about 300 cases, a few seconds each at worst (their own timeouts).
WSTEST_TIMEOUT = 900.0
#: Behaviors in the order the summary lists them; others (UNCLEAN, WRONG CODE, FAILED BY
#: CLIENT for closes) follow when they occur.
BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
#: How much of an expected or received event list a failure message quotes.
QUOTE = 300


def case_key(case_id: str) -> tuple[int, ...]:
    """Sort key of a case id such as ``7.13.2``: numerically, part by part."""
    return tuple(int(part) for part in re.findall(r"\d+", case_id))


def spec_for(url: str, agent: str, outdir: pathlib.Path) -> dict[str, Any]:
    """The fuzzingclient spec: the template with this run's URL, agent and output folder."""
    spec: dict[str, Any] = json.loads(SPEC_TEMPLATE.read_text(encoding="utf-8"))
    spec["outdir"] = str(outdir)
    spec["servers"] = [{"agent": agent, "url": url}]
    for variable, key in (("AUTOBAHN_CASES", "cases"), ("AUTOBAHN_EXCLUDE", "exclude-cases")):
        value = os.environ.get(variable)
        if value is not None:
            spec[key] = [item.strip() for item in value.split(",") if item.strip()]
    return spec


def counts(results: dict[str, dict[str, Any]], field: str) -> str:
    """``OK=250 NON-STRICT=3 ...`` for one field (``behavior`` or ``behaviorClose``)."""
    counter = Counter(str(case[field]) for case in results.values())
    names = BEHAVIORS + sorted(set(counter) - set(BEHAVIORS))
    return " ".join(f"{name}={counter[name]}" for name in names)


def others(results: dict[str, dict[str, Any]], field: str) -> dict[str, list[str]]:
    """The ids of the cases whose ``field`` is neither OK nor FAILED, by value."""
    found: dict[str, list[str]] = {}
    for case_id in sorted(results, key=case_key):
        value = str(results[case_id][field])
        if value not in ("OK", "FAILED"):
            found.setdefault(value, []).append(case_id)
    return found


def quote(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= QUOTE else text[:QUOTE] + "..."


def describe(case_id: str, case: dict[str, Any], outdir: pathlib.Path) -> str:
    """A failed case, from its own report: what was sent, expected and observed."""
    detail: dict[str, Any] = {}
    reportfile = case.get("reportfile")
    if reportfile and (outdir / reportfile).exists():
        detail = json.loads((outdir / reportfile).read_text(encoding="utf-8"))
    return "\n".join(
        [
            f"{case_id}: behavior={case['behavior']} behaviorClose={case['behaviorClose']} "
            f"remoteCloseCode={case.get('remoteCloseCode')}",
            f"    case: {detail.get('description', '?')}",
            f"    expectation: {detail.get('expectation', '?')}",
            f"    result: {detail.get('result', '?')} / {detail.get('resultClose', '?')}",
            f"    expected: {quote(detail.get('expected'))}"
            f" close: {quote(detail.get('expectedClose'))}",
            f"    received: {quote(detail.get('received'))}"
            f" closedByMe={detail.get('closedByMe')} wasClean={detail.get('wasClean')}",
        ]
    )


def keep(outdir: pathlib.Path, agent: str, server: Server | None) -> pathlib.Path:
    """Copy the report (and the server's log) to the artifacts folder, replacing the last."""
    target = ARTIFACTS / re.sub(r"[^\w.-]", "_", agent)
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(outdir, target)
    if server is not None:
        shutil.copy(server.log, target / server.log.name)
    return target


def test_autobahn_fuzzingclient(
    wstest: Wstest,
    websocket_url: tuple[str, str, Server | None],
    tmp_path: pathlib.Path,
) -> None:
    """No case of Autobahn|Testsuite (but 9, 12 and 13) FAILED against the raw websocket."""
    url, agent, server = websocket_url
    outdir = tmp_path / "report"
    spec_file = tmp_path / "fuzzingclient.json"
    spec_file.write_text(json.dumps(spec_for(url, agent, outdir), indent=2), encoding="utf-8")

    started = time.monotonic()
    try:
        done = subprocess.run(
            wstest.command("-m", "fuzzingclient", "-s", str(spec_file)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=tmp_path,
            env=wstest.environment(),
            text=True,
            errors="replace",
            timeout=WSTEST_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        output = error.stdout if isinstance(error.stdout, str) else (error.stdout or b"").decode()
        raise AssertionError(
            f"wstest did not finish within {WSTEST_TIMEOUT:.0f}s; its last lines:\n"
            + "\n".join(output.splitlines()[-20:])
        ) from None
    elapsed = time.monotonic() - started
    index = outdir / "index.json"
    assert done.returncode == 0 and index.exists(), (
        f"wstest exited with {done.returncode} and no report:\n{done.stdout[-4000:]}"
    )
    results: dict[str, dict[str, Any]] = json.loads(index.read_text(encoding="utf-8")).get(
        agent, {}
    )
    kept = keep(outdir, agent, server)
    assert results, f"wstest ran no case against {url}:\n{done.stdout[-4000:]}"

    report(f"autobahn {agent}: {len(results)} cases against {url} in {elapsed:.1f}s")
    report(f"autobahn {agent} behavior:      {counts(results, 'behavior')}")
    report(f"autobahn {agent} behaviorClose: {counts(results, 'behaviorClose')}")
    report(f"autobahn {agent} report: {kept / 'index.html'}")

    for field in ("behavior", "behaviorClose"):
        for name, ids in others(results, field).items():
            report(f"autobahn {agent} {field} {name}: {' '.join(ids)}")

    failed = sorted(
        (
            case_id
            for case_id, case in results.items()
            if "FAILED" in (case["behavior"], case["behaviorClose"])
        ),
        key=case_key,
    )
    report(f"autobahn {agent} FAILED: {' '.join(failed) or 'none'}")
    if failed:
        pytest.fail(
            f"{len(failed)} of {len(results)} Autobahn|Testsuite cases FAILED against {url} "
            f"(report: {kept / 'index.html'}):\n"
            + "\n".join(describe(case_id, results[case_id], outdir) for case_id in failed),
            pytrace=False,
        )
