"""
What ``twistd sockjs`` serves when no factory is named: an echo service, a small chat, and a
page that talks to both with a transport picker.
"""

from __future__ import annotations

import html
import json
from importlib import resources

from twisted.internet.interfaces import IAddress, ITransport
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from zope.interface import implementer

from txsockjs import IBinaryMessageReceiver, MessageProtocol, broadcast

__all__ = ["ChatFactory", "ChatProtocol", "EchoFactory", "EchoProtocol", "demoPage"]


@implementer(IBinaryMessageReceiver)
class EchoProtocol(Protocol):
    """Sends every message back as it came: text as text, binary (raw websocket) as binary."""

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def binaryMessageReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.writeBinary(data)  # type: ignore[attr-defined]


class EchoFactory(Factory):
    """Builds :class:`EchoProtocol`."""

    protocol = EchoProtocol


class ChatProtocol(MessageProtocol):
    """Passes every message to everyone in the chat, its sender included."""

    def __init__(self, room: set[ITransport]) -> None:
        self.room = room

    def connectionMade(self) -> None:
        assert self.transport is not None
        others = len(self.room)
        broadcast(self.room, "* someone joined")
        self.room.add(self.transport)
        self.sendMessage(f"* welcome; {others} other(s) here")

    def messageReceived(self, message: str) -> None:
        broadcast(self.room, message)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.room.discard(self.transport)
        broadcast(self.room, "* someone left")


class ChatFactory(Factory):
    """Builds :class:`ChatProtocol`; keeps the transports of everyone in the chat."""

    noisy = False

    def __init__(self) -> None:
        self.participants: set[ITransport] = set()

    def buildProtocol(self, addr: IAddress | None) -> ChatProtocol:
        protocol = ChatProtocol(self.participants)
        protocol.factory = self
        return protocol


class _Page(Resource):
    """A page built once at start-up."""

    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._body = body

    def render_GET(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-content-type-options", b"nosniff")
        return self._body

    def render_HEAD(self, request: IRequest) -> bytes:
        return self.render_GET(request)


def _scriptSafeJSON(value: object) -> str:
    """JSON that cannot end the ``<script>`` element it is put in."""
    text = json.dumps(value)
    for character in "<>&\u2028\u2029":
        text = text.replace(character, f"\\u{ord(character):04x}")
    return text


def demoPage(sockjsURL: str, echoPrefix: str, chatPrefix: str) -> Resource:
    """
    Build the demo page.

    :param sockjsURL: where the page loads sockjs-client from.
    :param echoPrefix: the path of the echo service.
    :param chatPrefix: the path of the chat service.
    """
    template = (resources.files("txsockjs") / "static" / "demo.html").read_text("utf-8")
    config = {"echo": echoPrefix, "chat": chatPrefix, "sockjsURL": sockjsURL}
    page = template.replace("{{config}}", _scriptSafeJSON(config)).replace(
        "{{sockjs_url}}", html.escape(sockjsURL, quote=True)
    )
    return _Page(page.encode("utf-8"))
