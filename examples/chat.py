"""
A chat: every message goes to everyone connected, encoded once for all of them.

Run ``python examples/chat.py [ENDPOINT]`` (default ``tcp:8080``) and open
``http://localhost:8080/`` in two browser windows.
"""

import sys

from twisted.internet import endpoints, task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from txsockjs import MessageProtocol, SockJSResource, broadcast

log = Logger()

PAGE = b"""<!DOCTYPE html>
<meta charset="utf-8"><title>txsockjs chat</title>
<script src="https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js"></script>
<pre id="log"></pre>
<form id="form"><input id="text" autocomplete="off" autofocus> <button>Send</button></form>
<script>
  var sock = new SockJS("/chat");
  var log = document.getElementById("log"), text = document.getElementById("text");
  sock.onmessage = function (e) { log.textContent += e.data + "\\n"; };
  document.getElementById("form").onsubmit = function (e) {
    e.preventDefault(); sock.send(text.value); text.value = "";
  };
</script>
"""


class Chat(MessageProtocol):
    def connectionMade(self):
        super().connectionMade()
        self.factory.everyone.add(self.transport)

    def messageReceived(self, message):
        broadcast(self.factory.everyone, message)

    def connectionLost(self, reason):
        self.factory.everyone.discard(self.transport)
        super().connectionLost(reason)


class ChatFactory(Factory):
    protocol = Chat

    def __init__(self):
        self.everyone = set()


async def main(reactor, description="tcp:8080"):
    root = Resource()
    root.putChild(b"", Data(PAGE, "text/html; charset=utf-8"))
    root.putChild(b"chat", SockJSResource(ChatFactory()))
    port = await endpoints.serverFromString(reactor, description).listen(Site(root))
    log.info("listening on port {port}: open / in a browser", port=port.getHost().port)
    await Deferred()


if __name__ == "__main__":
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, *sys.argv[1:])))
