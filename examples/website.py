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
from twisted.web.static import File

from txsockjs import SockJSResource, SockJSSite

log = Logger()
PUBLIC = pathlib.Path(__file__).parent / "public"


def makeSite():
    root = File(str(PUBLIC))
    api = Resource()
    root.putChild(b"api", api)
    api.putChild(b"echo", SockJSResource(Factory.forProtocol(Echo)))
    root.putChild(b"echo2", SockJSResource(Factory.forProtocol(Echo), websocket=False))
    # A twisted.web Site that refuses request bodies over 1 MiB while they arrive and answers
    # the polls and sends of SockJS sessions on its lean path; a plain Site works too.
    return SockJSSite(root, max_body_bytes=1024 * 1024)


async def main(reactor, description="tcp:8080"):
    port = await endpoints.serverFromString(reactor, description).listen(makeSite())
    log.info("listening on port {port}: open / in a browser", port=port.getHost().port)
    await Deferred()


if __name__ == "__main__":
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, *sys.argv[1:])))
