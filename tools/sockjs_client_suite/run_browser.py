"""
Run sockjs-client's browser tests in headless Debian Chromium, driven by Playwright.

Usage::

    python3 tools/sockjs_client_suite/run_browser.py URL [--json FILE] [--timeout SECONDS]

``URL`` is the runner page (``http://127.0.0.1:8081/runner/``) of server.py or
reference_server.js. Prints every test's outcome in run order (failures with their error),
then the counts, and the first failure again: when one test hangs, its open streaming
request holds one of Chromium's six connections to the host, and a few of those make every
later test fail with 1002, so the first failure is the one that matters. Exits 0 when no
test failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def summarize(events: list[dict[str, Any]]) -> dict[str, Any]:
    """
    The outcome of each test (failed wins over passed: a test can fail after passing), by
    the id the runner page gives each test or hook.
    """
    outcome: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for event in events:
        if event["state"] == "start":
            continue
        key = str(event["id"])
        if key not in outcome:
            order.append(key)
            outcome[key] = dict(event)
        elif event["state"] == "failed":
            previous = outcome[key]["state"]
            outcome[key] = dict(event)
            if previous == "passed":
                outcome[key]["error"] = f"(after passing) {event['error']}"
    counts = {"passed": 0, "failed": 0, "pending": 0}
    for key in order:
        counts[outcome[key]["state"]] += 1
    return {"order": order, "outcome": outcome, "counts": counts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("url")
    parser.add_argument("--json", type=Path, help="write every event and the summary here")
    parser.add_argument("--console", type=Path, help="write the page's console log here")
    parser.add_argument("--timeout", type=float, default=1200.0, help="for the whole run")
    args = parser.parse_args(argv)

    console: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page()
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
            page.on(
                "requestfailed",
                lambda req: console.append(f"requestfailed: {req.url} {req.failure}"),
            )
            page.goto(args.url)
            deadline = time.monotonic() + args.timeout
            seen = 0
            done = False
            while time.monotonic() < deadline:
                page.wait_for_timeout(500)
                events: list[dict[str, Any]] = page.evaluate("window.suiteResults || []")
                for event in events[seen:]:
                    if event["state"] == "start":
                        continue
                    line = f"{event['state']:8} {event['title']}"
                    if event["error"]:
                        line += f"\n         -> {event['error']}"
                    print(line, flush=True)
                seen = len(events)
                if page.evaluate("window.suiteDone === true"):
                    done = True
                    break
            events = page.evaluate("window.suiteResults || []")
            stats = page.evaluate("window.suiteStats || null")
        finally:
            browser.close()

    summary = summarize(events)
    if not done:
        started = [e["title"] for e in events if e["state"] == "start"]
        print(f"TIMED OUT after {args.timeout:.0f} s; last test started: {started[-1:]}")
    counts = summary["counts"]
    print(
        f"\nbrowser: {counts['passed']} passing, {counts['failed']} failing, "
        f"{counts['pending']} pending{'' if done else ' (incomplete)'}"
    )
    if stats:
        print(
            f"(mocha's own count: {stats.get('passes')} passes, {stats.get('failures')} "
            f"failures, {stats.get('pending')} pending, {stats.get('tests')} tests run)"
        )
    failures = [summary["outcome"][k] for k in summary["order"]]
    failures = [o for o in failures if o["state"] == "failed"]
    if failures:
        first = failures[0]
        print(f"first failure: {first['title']}\n  {first['error']}\n  {first['stack']}")
    if args.json:
        args.json.write_text(json.dumps({"events": events, **summary}, indent=1))
    if args.console:
        args.console.write_text("\n".join(console) + "\n")
    return 0 if done and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
