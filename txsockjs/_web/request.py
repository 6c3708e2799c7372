"""
Request bodies bounded in size: read whole up to a limit, or refused with 413 while they
arrive.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.server import Request

from .._twisted_adapter import skip_form_parsing
from .responses import TEXT_PLAIN


class BodyTooLarge(Exception):
    """A request body exceeds ``max_message_bytes``."""


def read_body(request: IRequest, limit: int) -> bytes:
    """
    The request body, at most ``limit`` bytes.

    :raises BodyTooLarge: when the body is larger.
    """
    content = request.content
    if content is None:
        return b""
    getvalue = getattr(content, "getvalue", None)
    if getvalue is not None:  # a BytesIO: twisted.web keeps small bodies in memory
        data: bytes = getvalue()
        if len(data) > limit:
            raise BodyTooLarge(len(data))
        return data
    content.seek(0, 2)
    size = content.tell()
    if size > limit:
        raise BodyTooLarge(size)
    content.seek(0)
    data = content.read()
    return data


class BodyLimitedRequest(Request):
    """
    A request that refuses, with 413, a body larger than ``maxBodyBytes`` while it arrives,
    instead of buffering it whole. :class:`~txsockjs.SockJSFactory` sites use it; sites of
    your own can use :func:`body_limited_request` as their ``requestFactory``.
    """

    maxBodyBytes = 1024 * 1024
    _refused = False
    _received = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        skip_form_parsing(self)

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.maxBodyBytes:
            # HTTPChannel.allHeadersReceived answers "Expect: 100-continue" right after this
            # call; the 413 is the final answer, so nothing may follow it.
            self.requestHeaders.removeHeader(b"expect")
            self._refuse()
            length = 0
        super().gotLength(length)  # type: ignore[no-untyped-call]

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.maxBodyBytes:
            self._refuse()
            return
        super().handleContentChunk(data)  # type: ignore[no-untyped-call]

    def process(self) -> None:
        if not self._refused:
            super().process()  # type: ignore[no-untyped-call]

    def _refuse(self) -> None:
        if self._refused:
            return
        self._refused = True
        body = b"Payload too large.\n"
        transport = self.channel.transport
        if transport is not None:
            transport.write(
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: %s\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (TEXT_PLAIN, len(body), body)
            )
        self.channel.loseConnection()


def body_limited_request(max_body_bytes: int) -> type[BodyLimitedRequest]:
    """A ``requestFactory`` for a ``Site`` that refuses bodies over ``max_body_bytes``."""
    return type("BodyLimitedRequest", (BodyLimitedRequest,), {"maxBodyBytes": max_body_bytes})
