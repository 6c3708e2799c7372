"""
Every use of Twisted's private names, in one place.

Checked against Twisted 24.7.0 (the lowest version setup.py accepts, which CI tests in a
second environment) and 26.10.0. Each name here is read or set on objects Twisted builds
(``tcp.Server``, ``http.Request``); when a later Twisted renames one, this module is the
only place to change. The names are listed in :data:`PRIVATE_NAMES`, the releases they were
read against in :data:`CHECKED_VERSIONS`.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp
from twisted.web import http
from twisted.web.http import HTTPChannel, Request

#: The Twisted releases these helpers were read against (oldest, newest).
CHECKED_VERSIONS = ("24.7.0", "26.10.0")

#: Twisted attributes used here that are not part of its documented API.
PRIVATE_NAMES = (
    "Request._parsePOSTFormSubmission",
    "Request._disconnected",
    "tcp.Server._tempDataBuffer",
    # The lean request path's channel (txsockjs._web.lean.LeanChannel), an HTTPChannel
    # subclass, reads and sets these as HTTPChannel itself does between two requests.
    "HTTPChannel._HTTPChannel__first_line",
    "HTTPChannel._handlingRequest",
    "HTTPChannel._savedTimeOut",
    "HTTPChannel._waitingForTransport",
    "HTTPChannel._networkProducer",
    "HTTPChannel._optimisticEagerReadSize",
    "LineReceiver._buffer",
    "http._GenericHTTPChannelProtocol",
)


def skip_form_parsing(request: Request) -> None:
    """
    Keep twisted.web from parsing a POST body as a form.

    SockJS parses the one form it takes (jsonp_send) itself; twisted.web would parse every
    POST's ``Content-Type`` through the email package, the costliest step of a send. Twisted
    24.7 has no ``_parsePOSTFormSubmission`` flag: there setting it does nothing and the
    form is parsed as before (correct, only slower).
    """
    request._parsePOSTFormSubmission = False


def request_gone(request: Request) -> bool:
    """Whether the connection of ``request`` is lost (Twisted's ``_disconnected`` flag)."""
    return bool(request._disconnected)


def write_now(transport: Any, data: bytes) -> None:
    """
    Write ``data``, sending it at once when the connection has nothing buffered.

    ``transport.write`` buffers and asks the reactor to watch the socket for writability,
    which costs two ``epoll_ctl`` calls and a wake-up per burst; a websocket mostly sends
    one small frame at a time to an idle socket. On a plain TCP connection with an empty
    buffer the frame goes straight to ``send``; whatever the socket does not take (and
    everything in any other case) goes through ``transport.write`` as usual, so ordering,
    producers and disconnection behave exactly as Twisted defines them.
    """
    if (
        type(transport) is tcp.Server
        and transport.connected
        and not transport.disconnecting
        and not transport.dataBuffer
        and not transport._tempDataBuffer
    ):
        # What ``writeSomeData`` does, without its three calls and slice: ``send`` retries
        # on EINTR itself (PEP 475); a full buffer or a failed connection raises, and then
        # ``transport.write`` below buffers the data and its ``doWrite`` finds out.
        try:
            sent = transport.socket.send(data)
        except OSError:
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


def between_requests(channel: HTTPChannel) -> bool:
    """
    Whether ``channel`` is between two requests: nothing of a next request read yet, no
    request being answered, the connection persistent.
    """
    return bool(
        not channel._handlingRequest
        and channel.line_mode
        and not channel._buffer
        and channel.persistent
        and not channel.requests
        and channel._HTTPChannel__first_line == 1  # type: ignore[attr-defined]
    )


def http_channel_wrapper() -> Any:
    """
    The wrapper twisted.web puts around each ``HTTPChannel`` so that a TLS connection can
    negotiate HTTP/2 (``None`` if this Twisted has none).
    """
    return getattr(http, "_GenericHTTPChannelProtocol", None)
