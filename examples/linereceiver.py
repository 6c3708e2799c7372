"""
An existing line-based TCP service, served unchanged to browsers over SockJS as well.

``ShoutFactory`` knows nothing of SockJS: it is the factory you may already run on TCP. The
same factory listens on a TCP port and, wrapped in ``SockJSFactory``, on an HTTP port.

Run ``python examples/linereceiver.py [SOCKJS_ENDPOINT [TCP_ENDPOINT]]`` (defaults
``tcp:8080`` and ``tcp:8081``). Try ``telnet localhost 8081``, or from a browser
``sock.send("hello\\r\\n")`` on ``new SockJS("http://localhost:8080/shout")``: a SockJS
client sends the line ending as a TCP client would, and one message may hold several lines.
"""

import sys

from twisted.internet import endpoints, task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.protocols.basic import LineReceiver

from txsockjs import SockJSFactory

log = Logger()


class Shout(LineReceiver):
    def connectionMade(self):
        self.sendLine(b"HELLO. SAY SOMETHING.")

    def lineReceived(self, line):
        if line.strip().lower() == b"bye":
            self.sendLine(b"BYE.")
            self.transport.loseConnection()
        else:
            self.sendLine(line.upper())


class ShoutFactory(Factory):
    protocol = Shout


async def main(reactor, sockjsDescription="tcp:8080", tcpDescription="tcp:8081"):
    shout = ShoutFactory()
    tcpPort = await endpoints.serverFromString(reactor, tcpDescription).listen(shout)
    log.info("plain TCP on port {port}", port=tcpPort.getHost().port)
    sockjs = SockJSFactory(shout, prefix="/shout")
    port = await endpoints.serverFromString(reactor, sockjsDescription).listen(sockjs)
    log.info("listening on port {port}: SockJS at /shout", port=port.getHost().port)
    await Deferred()


if __name__ == "__main__":
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, *sys.argv[1:])))
