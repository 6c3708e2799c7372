"""
Every use of autobahn's internals, in one place.

txsockjs runs its websockets on autobahn's server protocol, and takes three shortcuts that
its public API does not offer: plain text frames are parsed and sent by :mod:`.frames`
instead of autobahn's per-frame machinery, close frames carry any code a server may send
(``sendClose`` takes only 1000 and 3000-4999), and a cleanly closed connection is closed
gracefully rather than reset. The names of autobahn's that this module reads or sets are
listed in :data:`PRIVATE_NAMES`; each was checked against the versions in
:data:`CHECKED_VERSIONS`, and ``tests/unit/test_websocket_paths.py`` checks, on whatever
version is installed, that the fast path and autobahn's own path agree frame for frame.
"""

from __future__ import annotations

from autobahn.twisted.websocket import WebSocketServerProtocol

from .._twisted_adapter import write_now
from .frames import HEARTBEAT_FRAME, PING, parse_text_frames, text_frame

#: The autobahn releases this adapter was read against (oldest, newest).
CHECKED_VERSIONS = ("24.4.2", "26.11.1")

#: Autobahn attributes and methods used here that are not part of its documented API.
PRIVATE_NAMES = (
    "current_frame",
    "inside_message",
    "send_state",
    "data",
    "consumeData",
    "_perMessageCompress",
    "_dataReceived",
    "_closeConnection",
    "sendCloseFrame",
    "closedByMe",
    "wasClean",
)

_STATE_OPEN = WebSocketServerProtocol.STATE_OPEN
_STATE_CLOSED = WebSocketServerProtocol.STATE_CLOSED
#: The open state, for subclasses that test it per message without the property.
STATE_OPEN = _STATE_OPEN
_SEND_GROUND = WebSocketServerProtocol.SEND_STATE_GROUND
#: The first byte of a final pong frame (no extension bits).
_PONG_HEAD = 0x8A

#: Close codes an endpoint may send (RFC 6455 7.4, IANA registry), besides 3000-4999.
SENDABLE_CODES = frozenset(WebSocketServerProtocol.CLOSE_STATUS_CODES_ALLOWED)
#: A close frame's reason fits in 123 bytes of UTF-8 (a control frame carries 125).
MAX_REASON = 123

#: What autobahn keeps of the opening handshake and never reads again.
_HANDSHAKE_LEFTOVERS = (
    "http_request_data",
    "http_response_data",
    "http_status_line",
    "http_request_uri",
    "http_request_path",
    "http_request_params",
    "http_request_host",
    "http_headers",
    "websocket_protocols",
    "websocket_extensions",
)


class FastServerProtocol(WebSocketServerProtocol):
    """
    Autobahn's server protocol with a fast path for the frames SockJS mostly carries.

    Subclasses implement :meth:`text_messages_received` (whole text messages off the fast
    path) and autobahn's ``onMessage`` (everything autobahn assembled itself).
    """

    #: Parse and send plain text frames here (off only to compare with autobahn's path).
    fastFrames = True
    #: The largest payload the fast path takes; larger frames go to autobahn.
    maxFastPayload = 1024 * 1024

    def text_messages_received(self, messages: list[bytes]) -> None:
        """Whole text messages the fast path parsed, in order: their UTF-8 payloads."""
        raise NotImplementedError

    @property
    def accepting_frames(self) -> bool:
        """Whether the websocket is open (handshake done, no close sent or received)."""
        return bool(self.state == _STATE_OPEN)

    def processData(self) -> bool:
        """
        Take whole, unfragmented, masked text frames and empty masked pongs straight off the
        buffer; hand anything else (other control frames, fragments, binary, partial or
        invalid frames) to autobahn.
        """
        if (
            self.fastFrames
            and self.current_frame is None
            and not self.inside_message
            and self.state == _STATE_OPEN
            and self._perMessageCompress is None
        ):
            data = self.data
            messages, used = parse_text_frames(data, self.maxFastPayload)
            if used:
                self.data = data = data[used:]
                self.text_messages_received(messages)
                if not data:
                    return False
            if data and data[0] == _PONG_HEAD and self.state == _STATE_OPEN:
                # Empty masked pongs, the answers to liveness pings: most reads of an idle
                # websocket are one of them, and autobahn's frame machinery costs as much
                # again as the read itself.
                end = len(data)
                position = 0
                while position + 6 <= end and data[position] == _PONG_HEAD:
                    if data[position + 1] != 0x80:  # a payload, or not masked
                        break
                    position += 6
                if position:
                    self.data = data = data[position:]
                    for _ in range(position // 6):
                        self.onPong(b"")
                    if not data:
                        return False
        result: bool = super().processData()
        return result

    def _frames_directly(self) -> bool:
        """Whether a frame may be written here: no message is half sent, no compression."""
        return (
            self.fastFrames
            and self.send_state == _SEND_GROUND
            and self._perMessageCompress is None
        )

    def sendText(self, payload: bytes) -> None:
        """Send one text message, framed here when nothing else is being sent."""
        if self.state != _STATE_OPEN:
            return  # closing: nothing more goes out
        # _frames_directly(), inlined: this runs for every frame sent.
        if (
            self.fastFrames
            and self.send_state == _SEND_GROUND
            and self._perMessageCompress is None
        ):
            write_now(self.transport, text_frame(payload))
        else:
            self.sendMessage(payload, False)  # type: ignore[no-untyped-call]

    def send_ping_after(self, payload: bytes | None) -> None:
        """Send a text message (if any) and an empty ping, in one write when possible."""
        if self.state != _STATE_OPEN:
            return
        if self._frames_directly():
            write_now(self.transport, PING if payload is None else text_frame(payload) + PING)
            return
        if payload is not None:
            self.sendText(payload)
        self.sendPing()

    def send_heartbeat(self) -> None:
        """Send the SockJS heartbeat frame ``h`` (a frame built once)."""
        if self.state != _STATE_OPEN:
            return
        if self._frames_directly():
            write_now(self.transport, HEARTBEAT_FRAME)
        else:
            self.sendMessage(b"h", False)  # type: ignore[no-untyped-call]

    def sendBinary(self, payload: bytes) -> None:
        """Send one binary message."""
        if self.state == _STATE_OPEN:
            self.sendMessage(payload, True)  # type: ignore[no-untyped-call]

    def send_close_code(self, code: int, reason: str) -> None:
        """
        Start the closing handshake with ``code``, the server's own (1001, 1003, 1007, 1008,
        1011 ...) included; a code that must never be sent (1005, 1006, 1015, out of range)
        becomes 1000. The reason is cut to fit a control frame, on a character boundary.
        """
        if code not in SENDABLE_CODES and not 3000 <= code <= 4999:
            code = 1000
        encoded = reason.encode("utf-8")
        if len(encoded) > MAX_REASON:
            encoded = encoded[:MAX_REASON].decode("utf-8", "ignore").encode("utf-8")
        self.sendCloseFrame(code=code, reasonUtf8=encoded, isReply=False)

    def closed_cleanly_by_peer(self, wasClean: bool) -> bool:
        """Whether the client started the closing handshake and it completed."""
        return bool(wasClean) and not self.closedByMe

    def drop_handshake_leftovers(self) -> None:
        """The handshake is over: drop what autobahn kept of it (about 2 kB a session)."""
        for name in _HANDSHAKE_LEFTOVERS:
            if hasattr(self, name):
                setattr(self, name, None)

    def dataReceived(self, data: bytes) -> None:
        # Straight to the protocol machinery: autobahn's Twisted adapter formats a debug line
        # (with terminal colours) for every read even when nothing logs it.
        if self.data or self.state != _STATE_OPEN or not self.fastFrames:
            self._dataReceived(data)
            return
        # An open websocket with nothing buffered (most reads): what autobahn's
        # _dataReceived and consumeData do, without their two calls, the buffer copy and
        # the wire-level octet count (autobahn's trafficStats, which txsockjs never reads).
        self.data = data
        if self.processData() and self.state != _STATE_CLOSED:
            self.consumeData()

    def _closeConnection(self, abort: bool = False) -> None:
        # After a clean closing handshake autobahn aborts the TCP connection (an RST, which
        # clients report as "connection reset"); close it gracefully instead.
        super()._closeConnection(abort and not self.wasClean)
