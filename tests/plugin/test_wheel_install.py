"""
The package as a user gets it: build a wheel, install it into a new virtualenv, and run
``twistd -n sockjs`` from there. Slow (it installs Twisted and autobahn from the package
index), so marked ``slow``; CI runs it.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import venv

import pytest
from sockjs_helpers import ROOT, ServerProcess, XHRSession, info, run, twistd

pytestmark = pytest.mark.slow


def isolatedEnvironment() -> dict[str, str]:
    """An environment that does not point into the working tree or this interpreter."""
    import os

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_wheelInFreshVirtualenv(tmp_path: pathlib.Path) -> None:
    env = isolatedEnvironment()
    # Build from a copy, as from a fresh clone: nothing left over from earlier builds.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            "node_modules",
            "dropin.cache",
            ".mypy_cache",
            ".ruff_cache",
            "artifacts",
        ),
    )
    dist = tmp_path / "dist"
    built = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-w",
            str(dist),
            str(source),
        ],
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stdout
    [wheel] = dist.glob("txsockjs-2.0.0.dev0-*.whl")

    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    assert "twisted/plugins/txsockjs_plugin.py" in names
    assert "twisted/plugins/__init__.py" not in names
    assert "twisted/__init__.py" not in names
    assert "txsockjs/py.typed" in names
    assert "txsockjs/static/demo.html" in names

    home = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    python = home / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q"]

    # Twisted first, and its plugin cache written, so that the wheel lands beside a cache
    # that does not know it: the cache must be refreshed or harmless.
    twisted = run(pip + ["twisted[tls]>=24.7"], timeout=900, env=env, cwd=tmp_path)
    assert twisted.returncode == 0, twisted.stdout
    warm = run(twistd(python) + ["--help"], env=env, cwd=tmp_path)
    assert warm.returncode == 0, warm.stdout
    assert "sockjs" not in warm.stdout

    installed = run(pip + [str(wheel)], timeout=900, env=env, cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout

    helped = run(twistd(python) + ["sockjs", "--help"], env=env, cwd=tmp_path)
    assert helped.returncode == 0, helped.stdout
    assert "--factory" in helped.stdout

    where = run(
        [str(python), "-c", "import txsockjs, sys; sys.stdout.write(txsockjs.__file__)"],
        env=env,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(home)), where.stdout

    args = twistd(python) + [
        "-n",
        "--pidfile=",
        "--logfile=-",
        "sockjs",
        "--listen=tcp:0:interface=127.0.0.1",
    ]
    with ServerProcess(args, env=env, cwd=tmp_path) as server:
        port = server.port(r"starting on (\d+)")
        base = f"http://127.0.0.1:{port}/echo"
        assert info(base)["websocket"] is True
        session = XHRSession(base)
        session.send("from a fresh virtualenv")
        assert session.receive(1) == ["from a fresh virtualenv"]

    endpoint = subprocess.run(
        [
            str(python),
            "-c",
            "from twisted.internet import reactor\n"
            "from twisted.internet.endpoints import serverFromString\n"
            "print(type(serverFromString(reactor, 'sockjs:tcp:0:prefix=/x')).__name__)",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert endpoint.stdout.strip() == "SockJSServerEndpoint", endpoint.stdout + endpoint.stderr
