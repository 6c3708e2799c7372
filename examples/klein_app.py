"""
SockJS under a klein application: a branch route hands the rest of the path to the resource.

Run ``python examples/klein_app.py [ENDPOINT]`` (default ``tcp:8080``); the SockJS echo
service is at ``http://localhost:8080/echo``. Needs ``pip install klein``.
"""

import sys

from klein import Klein
from twisted.internet import endpoints, task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.protocols.wire import Echo
from twisted.web.server import Site

from txsockjs import SockJSResource

log = Logger()
app = Klein()
echo = SockJSResource(Factory.forProtocol(Echo))


@app.route("/")
def home(request):
    return "A klein app; its SockJS echo service is at /echo."


@app.route("/echo", branch=True)
def sockjs(request):
    return echo


async def main(reactor, description="tcp:8080"):
    site = Site(app.resource())
    port = await endpoints.serverFromString(reactor, description).listen(site)
    log.info("listening on port {port}: SockJS at /echo", port=port.getHost().port)
    await Deferred()


if __name__ == "__main__":
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, *sys.argv[1:])))
