"""
``twistd sockjs``: serve a Twisted protocol factory to browsers over SockJS.

With no argument, ``twistd -n sockjs`` listens on ``tcp:8080`` and serves an echo service at
``/echo``, a chat at ``/chat`` and, at ``/``, a demo page that talks to both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, cast

from twisted.application import strports
from twisted.application.service import IService, MultiService, Service
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IProtocolFactory, IReactorCore
from twisted.internet.protocol import Factory
from twisted.python import reflect, usage
from twisted.web.resource import IResource, Resource
from twisted.web.static import File

from txsockjs._options import DEFAULT_SOCKJS_URL, TRANSPORT_NAMES, SockJSOptions

__all__ = ["Options", "buildRoot", "makeService", "resolveFactory"]

_DEFAULTS = SockJSOptions()

#: Where the demo chat is served when no ``--factory`` is given.
DEMO_CHAT_PREFIX = "/chat"


class _Coerce:
    """
    A value converter for ``usage.Options``: names the flag when the value is bad, and has
    the ``coerceDoc`` that ``--help`` shows.
    """

    def __init__(self, flag: str, kind: str) -> None:
        self.flag = flag
        self.kind = kind
        self.coerceDoc = ""

    def __call__(self, text: str) -> int | float:
        value: int | float
        try:
            value = float(text) if self.kind == "seconds" else int(text)
        except ValueError:
            value = -1
        if self.kind == "seconds" and not value > 0:
            raise ValueError(f"--{self.flag} takes a positive number of seconds, not {text!r}")
        if value < 0:
            raise ValueError(f"--{self.flag} takes a whole number, 0 or more, not {text!r}")
        return value


def _number(flag: str, kind: str, default: float, doc: str) -> list[Any]:
    """An ``optParameters`` entry for a numeric flag."""
    return [flag, None, default, doc, _Coerce(flag, kind)]


def _oneLine(error: BaseException) -> str:
    """An exception as one line of text, for a usage error."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text


def resolveFactory(name: str) -> IProtocolFactory:
    """
    Find the protocol factory named by a dotted name.

    :param name: names a protocol factory, a protocol class, or a callable that returns a
        protocol factory when called with no argument.
    :raises usage.UsageError: when the name cannot be imported or names something else.
    """
    try:
        found: Any = reflect.namedAny(name)
    except Exception as error:
        hint = ""
        if isinstance(error, (ImportError, reflect.ModuleNotFound, reflect.ObjectNotFound)):
            hint = "; is its directory on PYTHONPATH?"
        raise usage.UsageError(
            f"--factory {name}: cannot import it ({type(error).__name__}: {_oneLine(error)})"
            + hint
        ) from None
    if IProtocolFactory.providedBy(found):
        factory: IProtocolFactory = found
        return factory
    if isinstance(found, type) and _isProtocolClass(found):
        return Factory.forProtocol(found)
    if callable(found):
        try:
            made = found()
        except Exception as error:
            raise usage.UsageError(
                f"--factory {name}: calling it failed ({type(error).__name__}: {_oneLine(error)})"
            ) from None
        if IProtocolFactory.providedBy(made):
            madeFactory: IProtocolFactory = made
            return madeFactory
        raise usage.UsageError(
            f"--factory {name}: calling it returned {made!r}, not a protocol factory"
        )
    raise usage.UsageError(
        f"--factory {name}: {found!r} is not a protocol factory, a protocol class or a "
        "callable returning a protocol factory"
    )


def _isProtocolClass(candidate: type) -> bool:
    from twisted.internet.interfaces import IProtocol

    return IProtocol.implementedBy(candidate)


def _normalizePrefix(prefix: str) -> str:
    if not prefix.startswith("/"):
        raise usage.UsageError(f"--prefix must start with '/', not {prefix!r}")
    stripped = prefix.rstrip("/")
    segments = stripped.split("/")[1:]
    for segment in segments:
        if segment in ("", ".", ".."):
            raise usage.UsageError(f"--prefix {prefix!r} has an empty, '.' or '..' segment")
    return stripped or "/"


class Options(usage.Options):
    """Command-line options of ``twistd sockjs``."""

    synopsis = "[options]"
    longdesc = (
        "Serve a Twisted protocol factory to browsers over SockJS (websocket, xhr-streaming, "
        "xhr-polling, eventsource, htmlfile and jsonp-polling). Without --factory: an echo "
        "service at /echo, a chat at /chat and a demo page at /, on tcp:8080. Example: "
        "twistd -n sockjs --listen tcp:8080 --factory myapp.protocols.factory --prefix /app"
    )

    optParameters: list[list[Any]] = [
        [
            "factory",
            "f",
            None,
            "Dotted name of a protocol factory, a protocol class, or a callable returning a "
            "protocol factory. Default: the echo service (and demo chat and page).",
        ],
        [
            "prefix",
            "p",
            None,
            "Path at which the SockJS service is mounted. Default: / with --factory, "
            "/echo without.",
        ],
        [
            "sockjs-url",
            None,
            DEFAULT_SOCKJS_URL,
            "URL of the sockjs-client script, for the iframe page and the demo page.",
        ],
        _number(
            "heartbeat-delay",
            "seconds",
            _DEFAULTS.heartbeat_delay,
            "Seconds between heartbeat frames.",
        ),
        _number(
            "disconnect-delay",
            "seconds",
            _DEFAULTS.disconnect_delay,
            "Seconds a session lives with no client attached.",
        ),
        _number(
            "response-limit",
            "integer",
            _DEFAULTS.response_limit,
            "Bytes after which a streaming response is ended and the client reconnects.",
        ),
        _number(
            "max-message-bytes",
            "integer",
            _DEFAULTS.max_message_bytes,
            "Largest request body or websocket message accepted, in bytes.",
        ),
        _number(
            "max-sessions",
            "integer",
            _DEFAULTS.max_sessions,
            "Most sessions open at once; new sessions beyond it are refused.",
        ),
        _number(
            "high-watermark",
            "integer",
            _DEFAULTS.high_watermark,
            "Queued outgoing bytes per session above which the protocol's producer is paused.",
        ),
        _number(
            "low-watermark",
            "integer",
            _DEFAULTS.low_watermark,
            "Queued outgoing bytes per session below which a paused producer is resumed.",
        ),
        [
            "base-url",
            None,
            None,
            "base_url reported by /info, for clients to use as their transport URL.",
        ],
        [
            "static",
            "s",
            None,
            "Serve the files of this directory at /, beside the SockJS service "
            "(which then needs a --prefix other than /).",
        ],
    ]

    optFlags: list[list[str | None]] = [
        ["no-websocket", None, "Do not serve the websocket transports."],
        ["jsessionid", None, "Set a JSESSIONID cookie, for load balancers that stick by it."],
        [
            "expose-cookies",
            None,
            "Show the Cookie header to the protocol (off by default: cookies invite CSRF).",
        ],
        ["disable-cors", None, "Send no CORS headers."],
        [
            "access-log",
            None,
            "Log every HTTP request (off by default: the polling transports make one "
            "request per message).",
        ],
    ]

    def __init__(self, reactor: IReactorCore | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        # The help of the opt_ methods comes from their docstrings: one line each.
        self.docs = {
            name: " ".join(doc.split()) if doc else doc for name, doc in self.docs.items()
        }
        self._reactor = reactor
        self["listen"] = []
        self["disable-transport"] = []
        self["trusted-proxy"] = []
        self.factory: IProtocolFactory | None = None
        self.sockjsOptions: dict[str, Any] = {}

    def opt_listen(self, description: str) -> None:
        """
        Endpoint to listen on, e.g. tcp:8080, ssl:8443:privateKey=key.pem:certKey=cert.pem
        or unix:/run/sockjs.sock (repeatable; default tcp:8080).
        """
        self["listen"].append(description)

    def opt_disable_transport(self, name: str) -> None:
        """
        Do not serve this transport (repeatable): websocket, xhr-streaming, xhr-polling,
        eventsource, htmlfile, jsonp-polling or raw-websocket.
        """
        if name not in TRANSPORT_NAMES:
            raise usage.UsageError(
                f"--disable-transport: unknown transport {name!r}; known: "
                f"{', '.join(sorted(TRANSPORT_NAMES))}"
            )
        self["disable-transport"].append(name)

    def opt_trusted_proxy(self, address: str) -> None:
        """
        IP address or network (CIDR) of a proxy whose X-Forwarded-For header is believed
        (repeatable).
        """
        self["trusted-proxy"].append(address)

    def reactor(self) -> IReactorCore:
        """The reactor the endpoints are parsed with: the one given, else the global one."""
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = cast(IReactorCore, reactor)
        return self._reactor

    def postOptions(self) -> None:
        if not self["listen"]:
            self["listen"] = ["tcp:8080"]
        if self["factory"] is not None:
            self.factory = resolveFactory(self["factory"])
        if self["prefix"] is None:
            self["prefix"] = "/" if self["factory"] is not None else "/echo"
        self["prefix"] = _normalizePrefix(self["prefix"])
        if self["factory"] is None and self["prefix"] == DEMO_CHAT_PREFIX:
            raise usage.UsageError(
                f"--prefix {DEMO_CHAT_PREFIX} is where the demo chat is served; choose another"
            )
        if self["static"] is not None:
            if not os.path.isdir(self["static"]):
                raise usage.UsageError(f"--static {self['static']}: not a directory")
            if self["prefix"] == "/":
                raise usage.UsageError(
                    "--static serves files at /, so the SockJS service needs a --prefix "
                    "other than /"
                )
        options: dict[str, Any] = {
            "sockjs_url": self["sockjs-url"],
            "websocket": not self["no-websocket"],
            "disabled_transports": tuple(self["disable-transport"]),
            "response_limit": self["response-limit"],
            "jsessionid": bool(self["jsessionid"]),
            "heartbeat_delay": self["heartbeat-delay"],
            "disconnect_delay": self["disconnect-delay"],
            "max_message_bytes": self["max-message-bytes"],
            "max_sessions": self["max-sessions"],
            "high_watermark": self["high-watermark"],
            "low_watermark": self["low-watermark"],
            "trusted_proxies": tuple(self["trusted-proxy"]),
            "expose_cookies": bool(self["expose-cookies"]),
            "base_url": self["base-url"],
            "disable_cors": bool(self["disable-cors"]),
        }
        try:
            SockJSOptions.from_kwargs(**options)
        except (TypeError, ValueError) as error:
            raise usage.UsageError(_oneLine(error)) from None
        self.sockjsOptions = options
        for description in self["listen"]:
            try:
                serverFromString(self.reactor(), description)
            except Exception as error:
                raise usage.UsageError(
                    f"--listen {description}: {type(error).__name__}: {_oneLine(error)}"
                ) from None


def _mount(root: Resource, prefix: str, child: IResource) -> None:
    """Put ``child`` at ``prefix`` (not ``/``) under ``root``, making the levels between."""
    segments = [segment.encode("utf-8") for segment in prefix.strip("/").split("/")]
    node = root
    for segment in segments[:-1]:
        existing = node.children.get(segment)
        if not isinstance(existing, Resource):
            existing = Resource()
            node.putChild(segment, existing)
        node = existing
    node.putChild(segments[-1], child)


def buildRoot(
    config: Options, resourceFactory: Callable[..., IResource] | None = None
) -> IResource:
    """
    Build the resource tree that ``twistd sockjs`` serves.

    :param config: parsed options.
    :param resourceFactory: makes the SockJS resource from a protocol factory, options and
        ``reactor=``; :class:`txsockjs.SockJSResource` unless given.
    """
    if resourceFactory is None:
        from txsockjs import SockJSResource

        resourceFactory = SockJSResource
    prefix: str = config["prefix"]
    demo = config.factory is None
    if demo:
        from txsockjs._demo import ChatFactory, EchoFactory

        factory: IProtocolFactory = EchoFactory()
    else:
        assert config.factory is not None
        factory = config.factory
    options: dict[str, Any] = dict(config.sockjsOptions, reactor=config.reactor())
    service = resourceFactory(factory, **options)

    if config["static"] is not None:
        root: Resource = File(config["static"])
    elif prefix == "/":
        return service
    else:
        root = Resource()
    _mount(root, prefix, service)
    if demo:
        _mount(root, DEMO_CHAT_PREFIX, resourceFactory(ChatFactory(), **options))
        if config["static"] is None:
            from txsockjs._demo import demoPage

            root.putChild(
                b"",
                demoPage(
                    sockjsURL=config["sockjs-url"],
                    echoPrefix=prefix,
                    chatPrefix=DEMO_CHAT_PREFIX,
                ),
            )
    return root


class _CloseOnStop(Service):
    """Closes the SockJS services (their sessions and timers) when twistd stops."""

    def __init__(self, resources: list[Any]) -> None:
        self.resources = resources

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        for resource in self.resources:
            resource.close()


def makeService(config: Options) -> IService:
    """
    Make the service ``twistd sockjs`` runs: one listening service per ``--listen``, all
    serving one site; stopping it closes every SockJS session.
    """
    from txsockjs import SockJSResource, SockJSSite

    made: list[SockJSResource] = []

    def resourceFactory(factory: IProtocolFactory, **options: Any) -> SockJSResource:
        resource = SockJSResource(factory, **options)
        made.append(resource)
        return resource

    site = SockJSSite(
        buildRoot(config, resourceFactory),
        max_body_bytes=config.sockjsOptions["max_message_bytes"],
        access_log=bool(config["access-log"]),
    )
    service = MultiService()
    for description in config["listen"]:
        strports.service(description, site, reactor=config.reactor()).setServiceParent(service)
    service.addService(_CloseOnStop(made))
    return service
