"""
The lean request path: SockJS's hottest requests answered straight from the HTTP channel.

A polling or streaming client makes one or two HTTP requests per message, and twisted.web
spends most of their cost on machinery these answers do not need: a line-by-line header
parser, a ``Headers`` object for each direction, the resource walk, the response head built
header by header. :class:`LeanChannel` is the ``HTTPChannel`` of a
:class:`~txsockjs.SockJSSite`; when a whole request arrives in one read at a request
boundary of a keep-alive HTTP/1.1 connection, and its path is a session URL of a SockJS
service mounted in the site's resource tree, it parses the head at once and hands it to the
service's lean handler (``SockJSResource.lean_handlers``), which answers with a head built
ahead of time and the body in one write. Anything else (another shape, another path, an
HTTP/1.0 or ``Connection: close`` request, ``Expect``, a chunked body, a request split over
reads, an access log, and any answer the handler does not give itself) goes through
``HTTPChannel`` unchanged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, datetimeToString
from twisted.web.resource import Resource

from .._twisted_adapter import between_requests, http_channel_wrapper, write_now

#: What a lean handler is given: the channel, the server and session ids of the URL, the
#: request headers (lowercase names, one value each), the body and the query string. It
#: returns whether it answered (or took) the request; ``False`` leaves it to the ordinary
#: path, untouched. Handlers are found by method and transport path segment.
LeanHandler = Callable[["LeanChannel", bytes, bytes, dict[bytes, bytes], bytes, bytes], bool]

_date_second = -1
_date_value = b""


def http_date() -> bytes:
    """The ``Date`` header's value for now, formatted once per second."""
    global _date_second, _date_value
    now = time.time()
    second = int(now)
    if second != _date_second:
        _date_value = datetimeToString(second)
        _date_second = second
    return _date_value


class LeanPending(Protocol):
    """A request the lean path took and answers later."""

    def lost(self) -> None:
        """The connection went away before the answer."""


def _handlers(site: Any, prefix: bytes) -> dict[tuple[bytes, bytes], LeanHandler] | None:
    """
    The lean handlers of the SockJS service at ``prefix`` (``b""`` or ``b"/a/b"``) of the
    site's tree, found as twisted.web would find it, or ``None`` when something in the way
    resolves paths its own way.
    """
    node = site.resource
    if prefix:
        for segment in prefix[1:].split(b"/"):
            if node.isLeaf or type(node).getChildWithDefault is not _CHILD_WITH_DEFAULT:
                return None
            node = node.children.get(segment)
            if node is None:
                return None
    handlers: dict[tuple[bytes, bytes], LeanHandler] | None = getattr(node, "lean_handlers", None)
    if handlers is None or node.children:
        return None
    return handlers


_CHILD_WITH_DEFAULT = Resource.getChildWithDefault

#: The header lines of a request head (after its request line) as the lean path takes
#: them: each a token, a colon and a value without NUL, CR or LF; no folded lines.
_HEADER_LINES = re.compile(rb"(?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00\r\n]*)+")


class LeanChannel(HTTPChannel):
    """An ``HTTPChannel`` that answers SockJS's session requests on the lean path."""

    #: The lean request waiting for its answer, if any; data read meanwhile waits.
    _lean_pending: LeanPending | None = None
    _lean_buffer: list[bytes] | None = None
    _lean_paused = False

    def dataReceived(self, data: bytes) -> None:
        if self._lean_pending is not None:
            self._lean_hold(data)
            return
        if between_requests(self):
            while data:
                rest = self._lean(data)
                if rest is None:
                    break
                if self._lean_pending is not None:
                    if rest:
                        self._lean_hold(rest)
                    return
                data = rest
            else:
                return
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    def _lean(self, data: bytes) -> bytes | None:
        """
        Answer the request at the start of ``data`` if it is one the lean path takes: the
        bytes after it, else ``None`` (nothing done).
        """
        end = data.find(b"\r\n\r\n")
        if end < 0 or end > self.totalHeadersSize:
            return None
        head = data[:end]
        line_end = head.find(b"\r\n")
        if line_end < 0 or head.count(b"\r\n") >= self.maxHeaders:
            return None
        if _HEADER_LINES.fullmatch(head, line_end) is None:
            return None  # folded, malformed or odd headers: the ordinary parser decides
        parts = head[:line_end].split(b" ")
        if len(parts) != 3 or parts[2] != b"HTTP/1.1":
            return None
        method, path, _ = parts
        if path[:1] != b"/" or b"%" in path:
            return None
        mark = path.find(b"?")
        query = b""
        if mark >= 0:
            query = path[mark + 1 :]
            path = path[:mark]
        route = path.rsplit(b"/", 3)
        if len(route) != 4:
            return None
        prefix, server_id, session_id, transport = route
        if not server_id or not session_id or b"." in server_id or b"." in session_id:
            return None
        site = self.site  # type: ignore[attr-defined]
        if getattr(site, "accessLog", True):
            return None
        handlers = _handlers(site, prefix)
        if handlers is None:
            return None
        handler = handlers.get((method, transport))
        if handler is None:
            return None
        headers: dict[bytes, bytes] = {}
        for line in head[line_end + 2 :].split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.lower()
            if name in headers:
                return None
            headers[name] = value.strip(b" \t")
        if (
            b"transfer-encoding" in headers
            or b"expect" in headers
            or b"upgrade" in headers
            or headers.get(b"connection", b"keep-alive").lower() != b"keep-alive"
        ):
            return None
        length_text = headers.get(b"content-length")
        if length_text is None:
            if method != b"GET":
                return None
            length_text = b"0"
        if not length_text.isdigit():
            return None
        length = int(length_text)
        start = end + 4
        limit = getattr(self.requestFactory, "maxBodyBytes", None)
        if limit is None or length > limit or len(data) - start < length:
            return None
        body = data[start : start + length]
        if not handler(self, server_id, session_id, headers, body, query):
            return None
        self.resetTimeout()  # type: ignore[no-untyped-call]
        return data[start + length :]

    # -- what handlers call -----------------------------------------------------------------

    def lean_write(self, data: bytes) -> None:
        """Send a whole answer (head and body)."""
        write_now(self.transport, data)

    def lean_wait(self, pending: LeanPending) -> None:
        """The request is answered later, by :meth:`lean_done`; the connection waits."""
        self._lean_pending = pending
        self._handlingRequest = True

    def lean_done(self, pending: LeanPending) -> None:
        """``pending`` is answered: the connection goes on with what arrived meanwhile."""
        if self._lean_pending is not pending:
            return
        self._lean_pending = None
        self._handlingRequest = False
        self.resetTimeout()  # type: ignore[no-untyped-call]
        if self._lean_paused:
            self._lean_paused = False
            if not self._waitingForTransport:
                self._networkProducer.resumeProducing()
        buffered = self._lean_buffer
        if buffered:
            self._lean_buffer = None
            self.dataReceived(b"".join(buffered))

    def timeoutConnection(self) -> None:
        """
        The idle timeout ran out: a connection whose request waits for its answer is not
        idle, so it starts again (HTTPChannel turns it off while it answers a request; the
        lean path leaves it running rather than cancel and remake it for every poll).
        """
        if self._lean_pending is not None:
            self.setTimeout(self.timeOut)  # type: ignore[no-untyped-call]
            return
        super().timeoutConnection()  # type: ignore[no-untyped-call]

    def _lean_hold(self, data: bytes) -> None:
        buffered = self._lean_buffer
        if buffered is None:
            buffered = self._lean_buffer = []
        buffered.append(data)
        if (
            not self._lean_paused
            and not self._waitingForTransport
            and sum(map(len, buffered)) > self._optimisticEagerReadSize
        ):
            self._lean_paused = True
            self._networkProducer.pauseProducing()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        pending = self._lean_pending
        if pending is not None:
            self._lean_pending = None
            pending.lost()
        super().connectionLost(reason)  # type: ignore[no-untyped-call]


def lean_channel_protocol(factory: Any) -> Any:
    """
    A ``protocol`` for an ``HTTPFactory``: a :class:`LeanChannel` inside the wrapper that
    lets TLS connections negotiate HTTP/2, as twisted.web's own channels are.
    """
    wrapper = http_channel_wrapper()
    if wrapper is None:
        return LeanChannel()  # type: ignore[no-untyped-call]
    return wrapper(LeanChannel())  # type: ignore[no-untyped-call]
