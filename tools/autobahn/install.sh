#!/usr/bin/env bash
# Install Autobahn|Testsuite (wstest, the RFC 6455 conformance suite) into a cache folder of
# the repository, for tests/external/test_autobahn_testsuite.py.
#
# autobahntestsuite runs on Python 2.7 only; we use pyenv's (~/.pyenv/versions/2.7*), or the
# interpreter named by $AUTOBAHN_PYTHON2. Idempotent: when the cache already holds this
# version, installed by that interpreter, it exits at once. Prints the cache folder on its
# last line.
#
#   AUTOBAHN_TESTSUITE_DIR  the cache folder (default: .cache/autobahntestsuite/ in the repo)
#   AUTOBAHN_PYTHON2        a Python 2.7 interpreter (default: the newest pyenv 2.7)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="25.10.1"
target="${AUTOBAHN_TESTSUITE_DIR:-$root/.cache/autobahntestsuite}"
here="$root/tools/autobahn"

find_python2() {
    if [ -n "${AUTOBAHN_PYTHON2:-}" ]; then
        echo "$AUTOBAHN_PYTHON2"
        return
    fi
    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}" candidate found=""
    # Glob order is lexical; sort -V puts 2.7.18 after 2.7.9.
    for candidate in $(ls -d "$pyenv_root"/versions/2.7*/bin/python 2>/dev/null | sort -V); do
        [ -x "$candidate" ] && found="$candidate"
    done
    echo "$found"
}

python2="$(find_python2)"
if [ -z "$python2" ] || ! "$python2" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' \
    2>/dev/null; then
    echo "tools/autobahn/install.sh: no Python 2.7 (got: ${python2:-nothing}; looked for" \
        "\$AUTOBAHN_PYTHON2, then" \
        "${PYENV_ROOT:-$HOME/.pyenv}/versions/2.7*/bin/python). autobahntestsuite $version" \
        "runs on Python 2.7 only: install one with 'pyenv install 2.7.18'." >&2
    exit 1
fi

stamp="autobahntestsuite==$version $python2"
if [ -f "$target/.installed" ] && [ "$(cat "$target/.installed")" = "$stamp" ] \
    && [ -f "$target/autobahntestsuite/wstest.py" ]; then
    echo "$target"
    exit 0
fi

echo "tools/autobahn/install.sh: installing autobahntestsuite==$version for $python2" >&2
mkdir -p "$(dirname "$target")"
staging="$(mktemp -d "$target.new.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
# --target keeps everything inside the cache folder. pip runs from the staging folder: from the
# repository, Python 2's pip would see (and complain about) txsockjs's own egg-info.
(cd "$staging" && PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONWARNINGS=ignore "$python2" -m pip \
    install -q --no-cache-dir --target "$staging" "autobahntestsuite==$version" >&2)
rm -rf "$target"
mv "$staging" "$target"
trap - EXIT
AUTOBAHN_TESTSUITE_DIR="$target" "$python2" "$here/wstest.py" --autobahn-import-check >&2
echo "$stamp" >"$target/.installed"
echo "$target"
