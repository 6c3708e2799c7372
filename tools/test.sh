#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine (as root), then run
# the quality gates and the tests. This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: Debian's Chromium for the browser tests, Node.js/npm for sockjs-client.
# Only what is missing: a Node.js that brings its own npm (NodeSource's) conflicts with
# Debian's npm package.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
# HAProxy and Redis for the scale-out tests (started by the tests themselves, never as services).
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Everything Python goes into a virtual environment of the clone's own (.venv), never the
# system interpreter: Debian's python3 refuses pip installs (externally-managed-environment).
python3 -c 'import ensurepip' 2>/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
}
[ -x .venv/bin/python ] || python3 -m venv .venv
export VIRTUAL_ENV="$PWD/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
# compat mode: the default editable install hides twisted/plugins/ from Twisted's plugin scan
python -m pip install -q --disable-pip-version-check -e '.[test,docs]' --config-settings editable_mode=compat
# sockjs-client is installed from the npm registry at test time, never committed.
(cd tests/browser && npm ci --no-audit --no-fund --silent)
bash tools/autobahn/install.sh >/dev/null  # Autobahn|Testsuite (Python 2.7), for tests/external

ruff check txsockjs tests examples benchmarks twisted
ruff format --check txsockjs tests examples benchmarks twisted
mypy
# The changelog fragments must render.
towncrier build --draft --version 2.0.0.dev0 >/dev/null
if [ -f doc/conf.py ]; then
    python -m sphinx -W --keep-going -q -b html doc /tmp/txsockjs-doc-build
fi
python -m pytest -q "$@"
# The integration tests again, on the asyncio reactor.
python -m pytest -q -p no:cacheprovider tests/integration --reactor asyncio

# The oldest Twisted and autobahn setup.py accepts, so that the claimed range is the tested
# range: the unit and integration tests again, in a second environment pinned to them.
[ -x .venv-lowest/bin/python ] || python3 -m venv .venv-lowest
.venv-lowest/bin/python -m pip install -q --disable-pip-version-check \
    -c tools/lowest-versions.txt -e '.[test]' --config-settings editable_mode=compat
.venv-lowest/bin/python tools/check_versions.py tools/lowest-versions.txt
.venv-lowest/bin/python -m pytest -q -p no:cacheprovider tests/unit tests/integration
