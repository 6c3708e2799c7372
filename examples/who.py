"""
The line service of ``linereceiver.py`` that also logs who connects, over SockJS or TCP.

Over SockJS the transport provides ``ISockJSTransport``: request headers, the transport the
browser ended up with, and so on. A protocol that should keep working over plain TCP asks
for the interface rather than assuming it.

Run ``python examples/who.py [SOCKJS_ENDPOINT [TCP_ENDPOINT]]`` (defaults ``tcp:8080`` and
``tcp:8081``); each connection is logged on standard output.
"""

import sys

from twisted.internet import endpoints, task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.protocols.basic import LineReceiver

from txsockjs import ISockJSTransport, SockJSFactory

log = Logger()


class Shout(LineReceiver):
    def connectionMade(self):
        peer = self.transport.getPeer()
        if ISockJSTransport.providedBy(self.transport):
            agent = self.transport.headers.get("user-agent", "?")
            how = self.transport.transportName  # "websocket", "xhr-streaming", ...
            log.info(
                "{peer.host} connected with {agent} over {how}", peer=peer, agent=agent, how=how
            )
        else:
            log.info("{peer.host} connected over plain TCP", peer=peer)
        self.sendLine(b"HELLO. SAY SOMETHING.")

    def lineReceived(self, line):
        self.sendLine(line.upper())


async def main(reactor, sockjsDescription="tcp:8080", tcpDescription="tcp:8081"):
    shout = Factory.forProtocol(Shout)
    tcpPort = await endpoints.serverFromString(reactor, tcpDescription).listen(shout)
    log.info("plain TCP on port {port}", port=tcpPort.getHost().port)
    sockjs = SockJSFactory(shout, prefix="/shout")
    port = await endpoints.serverFromString(reactor, sockjsDescription).listen(sockjs)
    log.info("listening on port {port}: SockJS at /shout", port=port.getHost().port)
    await Deferred()


if __name__ == "__main__":
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, *sys.argv[1:])))
