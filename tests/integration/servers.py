"""
Server-side protocols of the integration tests, and the test server harness.

The harness is one ``twisted.web`` Site listening on 127.0.0.1 (port 0) with several
``SockJSResource`` services mounted in its resource tree, real clients (treq, autobahn)
talking to it, and a teardown that checks that every session the clients left is gone after
its ``disconnect_delay`` and that no timer of txsockjs is left in the reactor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from treq.client import HTTPClient
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols import wire
from twisted.protocols.basic import FileSender
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from txsockjs import SockJSResource, SockJSSite

from .clients import CLIENTS, TIMEOUT, SockJSClient, with_timeout

#: Short enough that the teardown's wait for expired sessions stays short.
DISCONNECT_DELAY = 0.3
#: Lines shown in pytest's terminal summary (measurements such as peak RSS).
REPORT: list[str] = []


def report(line: str) -> None:
    """Show ``line`` in the terminal summary of the run (and print it)."""
    REPORT.append(line)
    print(line)


class Control(Protocol):
    """
    Echoes, except for a few commands, and records what happens to it.

    ``close CODE REASON``: ``transport.close``; ``quit``: ``loseConnection``;
    ``burst N``: N writes in one reactor turn; ``big N``: one message of N characters;
    ``facts``: a JSON message of what the transport tells about the connection.
    """

    instances: list[Control]

    def connectionMade(self) -> None:
        self.received: list[bytes] = []
        #: Fires with the reason of ``connectionLost`` (wrapped in a list, as a Deferred
        #: fired with a Failure would fail).
        self.lost: Deferred[list[Failure]] = Deferred()
        self.instances.append(self)

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        transport: Any = self.transport
        words = data.decode("utf-8", "surrogatepass").split(" ", 2)
        command = words[0]
        if command == "close":
            transport.close(int(words[1]), words[2])
        elif command == "quit":
            transport.loseConnection()
        elif command == "burst":
            for n in range(int(words[1])):
                transport.write(str(n).encode())
        elif command == "big":
            transport.write(b"x" * int(words[1]))
        elif command == "facts":
            peer, host = transport.getPeer(), transport.getHost()
            facts = {
                "transport": transport.transportName,
                "peer": [type(peer).__name__, peer.host, peer.port],
                "host": [host.host, host.port],
                "headers": dict(transport.headers),
                "url": transport.url,
                "path": transport.path,
                "prefix": transport.prefix,
                "state": transport.state,
            }
            transport.write(json.dumps(facts).encode())
        else:
            transport.write(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.lost.callback([reason])


def control_factory() -> tuple[Factory, list[Control]]:
    """A factory of :class:`Control` protocols, and the list they add themselves to."""
    instances: list[Control] = []
    protocol = type("Control", (Control,), {"instances": instances})
    return Factory.forProtocol(protocol), instances


#: One block of the generated text: ASCII, 2-, 3- and 4-byte UTF-8 characters, script
#: breakers and eventsource's ``%``, so that FileSender's 16 KiB chunks split characters at
#: every possible offset. Its length is prime-ish so chunk boundaries wander.
BLOCK = "".join(
    f"line {n:05d}: naïve café ☃ 𝄞 Ωμέγα </script> %41 \u2028 done\n" for n in range(997)
).encode("utf-8")


class TextFile:
    """A read-only file of ``size`` bytes (rounded down to whole blocks) of UTF-8 text."""

    def __init__(self, size: int):
        self.size = size - size % len(BLOCK)
        self.position = 0
        self._double = BLOCK * 2

    def read(self, n: int) -> bytes:
        n = min(n, self.size - self.position, len(BLOCK))
        offset = self.position % len(BLOCK)
        self.position += n
        return self._double[offset : offset + n]

    def digest(self) -> str:
        """The SHA-256 of the whole file's content."""
        digest = hashlib.sha256()
        for _ in range(self.size // len(BLOCK)):
            digest.update(BLOCK)
        return digest.hexdigest()


class SendFile(Protocol):
    """Sends the factory's file with ``twisted.protocols.basic.FileSender``, then closes."""

    factory: SendFileFactory

    def connectionMade(self) -> None:
        self.factory.sessions.append(self.transport)
        consumer: Any = self.transport
        if self.factory.wrap_consumer is not None:
            consumer = self.factory.wrap_consumer(consumer)
        sender = FileSender()
        done = sender.beginFileTransfer(self.factory.make_file(), consumer)
        done.addCallback(lambda _: self.transport.loseConnection())


class SendFileFactory(Factory):
    protocol = SendFile

    def __init__(self, size: int):
        self.size = size
        self.files: list[TextFile] = []
        self.sessions: list[Any] = []
        #: Gives the consumer FileSender writes to, given the session (instrumentation).
        self.wrap_consumer: Callable[[Any], Any] | None = None

    def make_file(self) -> TextFile:
        made = TextFile(self.size)
        self.files.append(made)
        return made


class Node(Resource):
    """An inner node of the Site's tree: a plain 404 for unknown children."""

    def getChild(self, path: bytes, request: Any) -> IResource:
        return notFound()


class Harness:
    """
    A Site on 127.0.0.1 with SockJS services, and the clients of one test.

    Mounted from the start: ``/echo`` (``twisted.protocols.wire.Echo``), ``/deep/er/echo``
    (the same, three levels down), ``/control`` (:class:`Control`, recorded in
    ``self.controls``), ``/heartbeat`` (Echo, heartbeat every 0.1 s) and ``/limited``
    (Control, ``max_message_bytes=1024``, ``response_limit=4096``).
    """

    def __init__(self, reactor: Any):
        self.reactor = reactor
        self.root = Node()
        # A SockJSSite, so that the lean request path (txsockjs._web.lean) serves what it
        # recognises; its body limit is set beyond every test's, so that the services'
        # own limits answer. The unit tests drive a plain Site.
        self.site: Site = SockJSSite(self.root, max_body_bytes=1 << 30)
        self.services: dict[str, SockJSResource] = {}
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.http = HTTPClient(Agent(reactor, pool=self.pool))
        self.clients: list[SockJSClient] = []
        self._waiters: list[tuple[Callable[[], bool], Deferred[None]]] = []
        self.port: Any = None
        #: Other listening ports of the test (SockJSFactory sites), stopped at teardown.
        self.other_ports: list[Any] = []
        echo = Factory.forProtocol(wire.Echo)
        self.mount("echo", echo)
        self.mount("deep/er/echo", echo)
        control, self.controls = control_factory()
        self.mount("control", control)
        self.mount("heartbeat", echo, heartbeat_delay=0.1)
        limited, self.limited_controls = control_factory()
        self.mount("limited", limited, max_message_bytes=1024, response_limit=4096)

    async def listen(self, factory: Any, services: dict[str, SockJSResource]) -> int:
        """
        Listen with another factory (a ``SockJSFactory``) on 127.0.0.1; its ``services``
        are checked at teardown like the Site's own. Returns the port number.
        """
        endpoint = TCP4ServerEndpoint(self.reactor, 0, interface="127.0.0.1")
        port = await endpoint.listen(factory)
        self.other_ports.append(port)
        for name, resource in services.items():
            self.services[name] = resource
            for method in ("forget", "session_closed"):
                self.observe(resource.service, method)
        return int(port.getHost().port)

    async def start(self) -> None:
        endpoint = TCP4ServerEndpoint(self.reactor, 0, interface="127.0.0.1")
        self.port = await endpoint.listen(self.site)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port.getHost().port}"

    def url(self, path: str) -> str:
        return f"{self.origin}/{path.strip('/')}"

    def mount(self, path: str, factory: Any, **options: Any) -> SockJSResource:
        """Mount a new service at ``path`` (any depth); short ``disconnect_delay`` default."""
        options.setdefault("disconnect_delay", DISCONNECT_DELAY)
        resource = SockJSResource(factory, **options)
        *parents, leaf = path.strip("/").encode().split(b"/")
        node = self.root
        for segment in parents:
            child = node.children.get(segment)
            if child is None:
                child = Node()
                node.putChild(segment, child)
            node = child
        node.putChild(leaf, resource)
        self.services[path.strip("/")] = resource
        service = resource.service
        for name in ("forget", "session_closed"):
            self.observe(service, name)
        return resource

    # -- waiting on conditions, without sleeping ----------------------------------------------

    def observe(self, obj: Any, name: str) -> None:
        """
        Re-check the waiting conditions each time ``obj.name(...)`` has run (an instance
        attribute wrapping the method: observation only, behaviour unchanged).
        """
        original = getattr(obj, name)

        def observed(*args: Any, **kwargs: Any) -> Any:
            try:
                return original(*args, **kwargs)
            finally:
                self.changed()

        setattr(obj, name, observed)

    def changed(self) -> None:
        waiting, self._waiters = self._waiters, []
        for predicate, d in waiting:
            if d.called:
                continue
            if predicate():
                d.callback(None)
            else:
                self._waiters.append((predicate, d))

    async def until(
        self, predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT
    ) -> None:
        """Wait until ``predicate()`` holds, re-checked on every observed call."""
        if predicate():
            return
        d: Deferred[None] = Deferred()
        self._waiters.append((predicate, d))
        try:
            await with_timeout(self.reactor, d, timeout)
        except Exception as error:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}") from error

    # -- clients ----------------------------------------------------------------------------------

    def client(self, transport: str, path: str = "echo", base_url: str = "", **kwargs: Any) -> Any:
        """
        A client of ``transport`` for the service at ``path`` of this Site, or at
        ``base_url`` (not connected yet).
        """
        url = base_url or self.url(path)
        client = CLIENTS[transport](self.reactor, self.http, url, **kwargs)
        self.clients.append(client)
        return client

    async def open(self, transport: str, path: str = "echo", **kwargs: Any) -> Any:
        """A connected client (``o`` received, except on the raw websocket)."""
        return await self.client(transport, path, **kwargs).open()

    # -- teardown ------------------------------------------------------------------------------

    def sessions_left(self) -> dict[str, int]:
        return {path: len(r.service) for path, r in self.services.items() if len(r.service)}

    async def close(self) -> None:
        """
        Drop every client, then check that each service forgets its sessions within its
        disconnect_delay (plus the timer wheel's slack), close the services and stop
        listening; no txsockjs timer may be left in the reactor.
        """
        for client in self.clients:
            await client.abort()
        await self.pool.closeCachedConnections()
        longest = max(r.options.disconnect_delay for r in self.services.values())
        try:
            await self.until(
                lambda: not self.sessions_left(),
                "every session is forgotten",
                timeout=longest + 3.0,
            )
        finally:
            left = self.sessions_left()
            for resource in self.services.values():
                resource.close()
            for port in [self.port, *self.other_ports]:
                if port is not None:
                    await port.stopListening()
        assert not left, f"sessions left after disconnect_delay: {left}"
        assert_no_txsockjs_timers(self.reactor)


def assert_no_txsockjs_timers(reactor: Any) -> None:
    """No DelayedCall of txsockjs is pending in the reactor."""
    left = [
        call
        for call in reactor.getDelayedCalls()
        if call.active() and getattr(call.func, "__module__", "").startswith("txsockjs")
    ]
    assert not left, f"txsockjs timers left in the reactor: {left}"
