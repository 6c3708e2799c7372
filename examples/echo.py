"""
Echo over SockJS, with Twisted's own echo protocol, unchanged.

Run ``python examples/echo.py [ENDPOINT]`` (default ``tcp:8080``), then point sockjs-client
at ``http://localhost:8080/echo``: every message comes back.
"""

import sys

from twisted.internet import endpoints, task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.protocols.wire import Echo

from txsockjs import SockJSFactory

log = Logger()


async def main(reactor, description="tcp:8080"):
    factory = SockJSFactory(Factory.forProtocol(Echo), prefix="/echo")
    port = await endpoints.serverFromString(reactor, description).listen(factory)
    log.info("listening on port {port}: the echo service is at /echo", port=port.getHost().port)
    await Deferred()  # serve until the process is stopped


if __name__ == "__main__":
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, *sys.argv[1:])))
