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

from txsockjs import IBinaryMessageReceiver, MessageProtocol
from txsockjs.channels import Channels

__all__ = ["ChatFactory", "ChatProtocol", "EchoFactory", "EchoProtocol", "demo_page"]

#: The channel of the demo chat.
CHAT_ROOM = "chat"


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

    def __init__(self, channels: Channels) -> None:
        self.channels = channels

    def connectionMade(self) -> None:
        assert self.transport is not None
        others = len(self.channels.members(CHAT_ROOM))
        self.channels.publish(CHAT_ROOM, "* someone joined")
        self.channels.join(CHAT_ROOM, self.transport)
        where = "here" if self.channels.bridge is None else "in this process"
        self.sendMessage(f"* welcome; {others} other(s) {where}")

    def messageReceived(self, message: str) -> None:
        self.channels.publish(CHAT_ROOM, message)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.transport is not None:
            self.channels.leaveAll(self.transport)
        self.channels.publish(CHAT_ROOM, "* someone left")


class ChatFactory(Factory):
    """
    Builds :class:`ChatProtocol`: everyone is in the channel ``"chat"`` of ``channels`` (a
    :class:`~txsockjs.channels.Channels` with a Redis URL makes it one room across
    processes; a new, in-process one if not given).
    """

    noisy = False

    def __init__(self, channels: Channels | None = None) -> None:
        self.channels = channels if channels is not None else Channels()

    @property
    def participants(self) -> frozenset[ITransport]:
        """The transports in the chat, in this process."""
        return self.channels.members(CHAT_ROOM)

    def buildProtocol(self, addr: IAddress | None) -> ChatProtocol:
        protocol = ChatProtocol(self.channels)
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


def demo_page(sockjsURL: str, echoPrefix: str, chatPrefix: str) -> Resource:
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
