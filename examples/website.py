"""
SockJS inside an existing twisted.web site, beside static files.

The site serves ``examples/public/`` at ``/``; SockJS services are ordinary resources in the
same tree, at any depth: an echo at ``/api/echo`` and, for comparison, another at ``/echo2``.

Run ``python examples/website.py [ENDPOINT]`` (default ``tcp:8080``) and open
``http://localhost:8080/``.
"""

import pathlib
import sys

from twisted.internet import endpoints, task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.protocols.wire import Echo
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import File

from txsockjs import SockJSResource, body_limited_request

log = Logger()
PUBLIC = pathlib.Path(__file__).parent / "public"


def makeSite():
    root = File(str(PUBLIC))
    api = Resource()
    root.putChild(b"api", api)
    api.putChild(b"echo", SockJSResource(Factory.forProtocol(Echo)))
    root.putChild(b"echo2", SockJSResource(Factory.forProtocol(Echo), websocket=False))
    site = Site(root)
    # Refuse request bodies over 1 MiB while they arrive, rather than buffering them.
    site.requestFactory = body_limited_request(1024 * 1024)
    return site


async def main(reactor, description="tcp:8080"):
    port = await endpoints.serverFromString(reactor, description).listen(makeSite())
    log.info("listening on port {port}: open / in a browser", port=port.getHost().port)
    await Deferred()


if __name__ == "__main__":
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, *sys.argv[1:])))
