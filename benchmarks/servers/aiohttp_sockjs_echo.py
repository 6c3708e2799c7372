"""SockJS echo on aiohttp's `sockjs` package (installed by benchmarks/run.py into
benchmarks/.peers/venv). Usage: python aiohttp_sockjs_echo.py PORT HEARTBEAT_SECONDS"""

import sys

import sockjs
from aiohttp import web


async def echo(manager, session, msg):
    if msg.type == sockjs.MsgType.MESSAGE:
        session.send(msg.data)


def main() -> None:
    port = int(sys.argv[1])
    heartbeat = float(sys.argv[2]) if len(sys.argv) > 2 else 25.0
    app = web.Application()
    sockjs.add_endpoint(
        app, echo, name="echo", prefix="/echo", heartbeat_delay=heartbeat, disconnect_delay=5
    )
    print(f"listening {port}", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
