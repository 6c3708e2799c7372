#!/usr/bin/env bash
# Run sockjs-client's own test suite (node and browser) against txsockjs, or against
# sockjs-node (the suite's own server) for reference. See README.md next to this file.
#
#   run.sh CHECKOUT [--server txsockjs|sockjs-node] [--only node|browser]
#                   [--rev GIT_REV] [--port PORT] [--out DIR]
#
# CHECKOUT is a sockjs-client checkout (git clone, tag v1.6.1); its npm dependencies are
# installed inside it when missing. Everything listens on 127.0.0.1 only.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
checkout="$(cd "$1" && pwd)" || usage
shift
server=txsockjs
only=all
rev=
port=8081
out=
while [ $# -gt 0 ]; do
    case "$1" in
        --server) server="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        --rev) rev="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) usage ;;
    esac
done
case "$server" in txsockjs|sockjs-node) ;; *) usage ;; esac
out="${out:-/tmp/sockjs-client-suite-results/$server}"
mkdir -p "$out"

# The node tests hard-code http://localhost:8081 for their server.
if [ "$only" != browser ] && [ "$port" != 8081 ]; then
    echo "the node tests need port 8081" >&2
    exit 2
fi

cd "$checkout"
echo "sockjs-client: $(git -C "$checkout" describe --tags --always 2>/dev/null) at $checkout"
if [ ! -d node_modules/mocha ]; then
    npm install --no-audit --no-fund >"$out/npm-install.log" 2>&1 || {
        echo "npm install failed, see $out/npm-install.log" >&2; exit 1; }
fi
# lib/sockjs.js of the static files: the iframe pages load it (upstream: gulp testbundle).
if [ ! -f tests/html/lib/sockjs.js ]; then
    npx gulp testbundle >"$out/build.log" 2>&1 || {
        echo "gulp testbundle failed, see $out/build.log" >&2; exit 1; }
fi
bundle="$out/browser-bundle.js"
if [ "$only" != node ]; then
    npx browserify tests/browser.js --debug -o "$bundle" >>"$out/build.log" 2>&1 || {
        echo "browserify tests/browser.js failed, see $out/build.log" >&2; exit 1; }
fi

server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
        server_pid=
    fi
}
trap stop_server EXIT

wait_for_port() {
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null "http://127.0.0.1:$port/runner/"; then
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "the server exited, see $out/server-$1.log" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "the server did not listen on $port, see $out/server-$1.log" >&2
    return 1
}

# Which txsockjs: one commit (--rev), exported once so that both phases run the same code
# while others commit, or else the working tree as it is.
pythonpath="${PYTHONPATH:-}"
if [ "$server" = txsockjs ]; then
    if [ -n "$rev" ]; then
        commit="$(git -C "$repo" rev-parse --verify "$rev^{commit}")" || exit 1
        tree="$out/txsockjs-tree"
        rm -rf "$tree" && mkdir -p "$tree"
        git -C "$repo" archive "$commit" txsockjs | tar -x -C "$tree"
        pythonpath="$tree"
        echo "txsockjs: $(git -C "$repo" log -1 --format='%h %s' "$commit" | cut -c1-100)"
    else
        echo "txsockjs: working tree of $repo (HEAD $(git -C "$repo" rev-parse --short HEAD)," \
             "$(git -C "$repo" status --porcelain txsockjs | wc -l) changed file(s) in txsockjs/)"
        pythonpath="$repo${pythonpath:+:$pythonpath}"
    fi
fi

start_txsockjs() {
    PYTHONPATH="$pythonpath" python3 "$here/server.py" "$checkout" --port "$port" \
        --bundle "$bundle" >"$out/server-$1.log" 2>&1 &
    server_pid=$!
    wait_for_port "$1"
}

start_reference() {
    node "$here/reference_server.js" "$checkout" "$port" "$bundle" >"$out/server-$1.log" 2>&1 &
    server_pid=$!
    wait_for_port "$1"
}

status=0
if [ "$only" != browser ]; then
    echo "== node tests ($server)"
    if [ "$server" = txsockjs ]; then
        start_txsockjs node || exit 1
        SOCKJS_CLIENT_DIR="$checkout" timeout 900 npx mocha --exit "$here/node-entry.js" \
            >"$out/node.txt" 2>&1 || status=1
        stop_server
    else
        timeout 900 npx mocha --exit -r "$here/loopback.js" tests/node.js \
            >"$out/node.txt" 2>&1 || status=1
    fi
    grep -E '^ +[0-9]+ (passing|failing|pending)' "$out/node.txt" | sed 's/^ */node: /'
    echo "(full output: $out/node.txt)"
fi

if [ "$only" != node ]; then
    echo "== browser tests ($server)"
    if [ "$server" = txsockjs ]; then
        start_txsockjs browser || exit 1
    else
        start_reference browser || exit 1
    fi
    python3 "$here/run_browser.py" "http://127.0.0.1:$port/runner/" \
        --json "$out/browser.json" --console "$out/browser-console.log" \
        >"$out/browser.txt" 2>&1 || status=1
    stop_server
    sed -n '/^browser:/,$p' "$out/browser.txt"
    echo "(full output: $out/browser.txt)"
fi
exit $status
