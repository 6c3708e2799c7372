"""
In-memory HTTP: a real twisted.web Site and HTTPChannel over a StringTransport, driven by
raw request bytes, with a small parser for what comes back (chunk by chunk).
"""

from __future__ import annotations

import dataclasses
import json

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Site

from txsockjs import SockJSSite


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, list[str]]
    chunks: list[bytes]
    complete: bool

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def frames(self) -> list[bytes]:
        """xhr-style frames: the body split at newlines."""
        return [line for line in self.body.split(b"\n") if line]


def parse(data: bytes, closed: bool) -> Response | None:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    chunks: list[bytes] = []
    if headers.get("transfer-encoding") == ["chunked"]:
        complete = False
        while rest:
            size_line, sep, rest = rest.partition(b"\r\n")
            if not sep:
                break
            size = int(size_line, 16)
            if size == 0:
                complete = True
                break
            chunks.append(rest[:size])
            rest = rest[size + 2 :]
    elif "content-length" in headers:
        length = int(headers["content-length"][0])
        chunks = [rest[:length]] if length else []
        complete = len(rest) >= length
    else:
        chunks = [rest] if rest else []
        complete = closed
    return Response(status, headers, chunks, complete)


class Exchange:
    """One request on its own connection."""

    def __init__(self, site: Site, raw: bytes, peer: str = "10.0.0.1"):
        self.transport = StringTransport(
            peerAddress=IPv4Address("TCP", peer, 40000),
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8080),
        )
        self.channel = site.buildProtocol(self.transport.getPeer())
        # As a TCP transport does; autobahn hands a websocket over by replacing it.
        self.transport.protocol = self.channel  # type: ignore[attr-defined]
        self.channel.makeConnection(self.transport)
        self.channel.dataReceived(raw)

    @property
    def response(self) -> Response:
        parsed = parse(self.transport.value(), self.transport.disconnecting)
        assert parsed is not None, f"no response yet: {self.transport.value()!r}"
        return parsed

    def answered(self) -> bool:
        return parse(self.transport.value(), self.transport.disconnecting) is not None

    def drop(self) -> None:
        """The client goes away."""
        self.channel.connectionLost(Failure(ConnectionLost("client left")))


class FakeHTTP:
    """
    Sends requests to ``root`` through a real Site; ``clock`` drives the Site's timers.

    :param lean: a :class:`~txsockjs.SockJSSite` (whose channels take the lean request path,
        ``txsockjs._web.lean``) rather than a plain ``Site``; its body limit is set beyond
        any test's, so that the services' own limits answer.
    """

    def __init__(self, root: Resource, lean: bool = False):
        if lean:
            self.site: Site = SockJSSite(root, max_body_bytes=1 << 30, reactor=Clock())
        else:
            self.site = Site(root, reactor=Clock())

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        version: str = "HTTP/1.1",
        chunked: bool = False,
    ) -> Exchange:
        all_headers = {"Host": "example.com"}
        if body and not chunked:
            all_headers["Content-Length"] = str(len(body))
        if chunked:
            all_headers["Transfer-Encoding"] = "chunked"
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        if method == "POST" and not body and not chunked:
            all_headers["Content-Length"] = "0"
        all_headers.update(headers or {})
        head = f"{method} {path} {version}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in all_headers.items()
        )
        return Exchange(self.site, head.encode("latin-1") + b"\r\n" + body)

    def post(self, path: str, body: bytes = b"", **kwargs: object) -> Exchange:
        return self.request("POST", path, body, **kwargs)  # type: ignore[arg-type]

    def get(self, path: str, **kwargs: object) -> Exchange:
        return self.request("GET", path, **kwargs)  # type: ignore[arg-type]

    def send(self, path: str, *messages: str) -> Exchange:
        return self.post(path, json.dumps(list(messages)).encode())
