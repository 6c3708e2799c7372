"""Fixtures shared by every test package: one headless Chromium for the browser tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

#: The flags this machine's Chromium needs: no sandbox as root, and no background traffic to
#: the (closed) outside network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def unavailable(why: str) -> None:
    """Skip on a developer's machine; fail in CI, which must run every browser test."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {why}", pytrace=False)
    pytest.skip(why)


def chromium_path() -> str:
    """Debian's Chromium (or ``$TXSOCKJS_CHROMIUM``); never a browser Playwright downloads."""
    path = os.environ.get("TXSOCKJS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        unavailable(
            f"no Chromium at {path}: run tools/test.sh or `apt-get install chromium` "
            "(or set TXSOCKJS_CHROMIUM)"
        )
    return path


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """
    One headless Chromium, driven by Playwright's sync API, for the whole run: Playwright
    allows a single sync instance at a time.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed: pip install -e '.[test]'")
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def _txsockjs_log_level() -> Iterator[None]:
    """
    Give back the level of the txsockjs events after each test: starting the service
    that ``twistd sockjs`` makes sets it for the process (``--log-level``, info by default).
    """
    from txsockjs._core import events as _events

    level = _events.log_level()
    try:
        yield
    finally:
        _events.set_log_level(level)
