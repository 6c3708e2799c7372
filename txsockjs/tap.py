"""
``twistd sockjs``: serve a Twisted protocol factory to browsers over SockJS.

With no argument, ``twistd -n sockjs`` listens on ``tcp:8080`` and serves an echo service at
``/echo``, a chat at ``/chat`` and, at ``/``, a demo page that talks to both.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.application import strports
from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IProtocolFactory, IReactorCore, IReactorTime
from twisted.internet.protocol import Factory
from twisted.python import reflect, usage
from twisted.web.resource import IResource, Resource
from twisted.web.static import File

from txsockjs._core.events import LEVELS, ServingLog, set_log_level
from txsockjs._core.options import OptionSpec, SockJSOptions, option_specs
from txsockjs._web.prefix import PrefixTree, mount, normalize_prefix

if TYPE_CHECKING:
    from txsockjs.channels import Channels

__all__ = [
    "Options",
    "buildRoot",
    "demoChannels",
    "makeService",
    "resolveFactory",
    "servedPaths",
]


def _describe(spec: OptionSpec) -> str:
    return spec.help + (f" ({spec.metavar})" if spec.kind not in ("bool", "list") else "")


#: ``optParameters`` entries of the SockJS options that take a value.
_SOCKJS_PARAMETERS: list[list[Any]] = [
    [spec.flag[2:], None, spec.default, _describe(spec)]
    for spec in option_specs()
    if spec.flag is not None and spec.kind not in ("bool", "list")
]
#: ``optFlags`` entries of the SockJS options that are on/off.
_SOCKJS_FLAGS: list[list[str | None]] = [
    [spec.flag[2:], None, ("Turn off (on by default): " if spec.default else "") + spec.help]
    for spec in option_specs()
    if spec.flag is not None and spec.kind == "bool"
]


def _repeatableHandler(spec: OptionSpec) -> Callable[[Options, str], None]:
    """An ``opt_`` method that collects the values of a repeatable flag."""
    assert spec.flag is not None
    key = spec.flag[2:]

    def handler(self: Options, value: str) -> None:
        self[key].append(value)

    handler.__doc__ = spec.help
    return handler


#: Where the demo chat is served when no ``--factory`` is given.
DEMO_CHAT_PREFIX = "/chat"


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
    try:
        return normalize_prefix(prefix)
    except ValueError as error:
        raise usage.UsageError(f"--{_oneLine(error)}") from None


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
            "static",
            "s",
            None,
            "Serve the files of this directory at /, beside the SockJS service "
            "(which then needs a --prefix other than /).",
        ],
        [
            "redis",
            None,
            None,
            "redis://HOST[:PORT][/DB]: the demo chat becomes one room across every process "
            "using this Redis (needs txredisapi: pip install txsockjs[redis]).",
        ],
        [
            "metrics",
            None,
            None,
            "Serve Prometheus metrics of the SockJS services at this path, e.g. /metrics "
            "(needs prometheus-client: pip install txsockjs[metrics]).",
        ],
        [
            "log-level",
            None,
            "info",
            "Lowest severity of the txsockjs events logged: debug (adds one event per "
            "session opened, closed or refused), info or error.",
        ],
    ]

    optFlags: list[list[str | None]] = [
        [
            "access-log",
            None,
            "Log every HTTP request (off by default: the polling transports make one "
            "request per message).",
        ],
    ]
    # Every SockJS option's flag is derived from its declaration in SockJSOptions.
    optParameters += _SOCKJS_PARAMETERS
    optFlags += _SOCKJS_FLAGS

    def __init__(self, reactor: IReactorCore | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        # The help of the opt_ methods comes from their docstrings: one line each.
        self.docs = {
            name: " ".join(doc.split()) if doc else doc for name, doc in self.docs.items()
        }
        self._reactor = reactor
        self["listen"] = []
        for spec in option_specs():
            if spec.repeatable and spec.flag is not None:
                self[spec.flag[2:]] = []
        self.factory: IProtocolFactory | None = None
        self.sockjsOptions: dict[str, Any] = {}

    def opt_version(self) -> None:
        """Print the versions of txsockjs, Twisted and autobahn, and exit."""
        from importlib.metadata import version

        from txsockjs import __version__

        sys.stdout.write(
            f"txsockjs {__version__} (Twisted {version('twisted')}, "
            f"autobahn {version('autobahn')})\n"
        )
        sys.exit(0)

    def opt_listen(self, description: str) -> None:
        """
        Endpoint to listen on, e.g. tcp:8080, ssl:8443:privateKey=key.pem:certKey=cert.pem
        or unix:/run/sockjs.sock (repeatable; default tcp:8080).
        """
        self["listen"].append(description)

    def _checkRedis(self, url: str) -> None:
        if self["factory"] is not None:
            raise usage.UsageError(
                "--redis connects the demo chat; with --factory, give the URL to "
                "txsockjs.channels.Channels in your own code"
            )
        try:
            from txsockjs.redis import parseRedisURL
        except ImportError as error:
            raise usage.UsageError(
                f"--redis needs txredisapi ({_oneLine(error)}): pip install txsockjs[redis]"
            ) from None
        try:
            parseRedisURL(url)
        except ValueError as error:
            raise usage.UsageError(f"--redis: {_oneLine(error)}") from None

    def _sockjsOptionValues(self) -> dict[str, Any]:
        """The SockJS options the flags give, converted from text by their declarations."""
        options: dict[str, Any] = {}
        for spec in option_specs():
            if spec.flag is None:
                continue
            key = spec.flag[2:]
            value = self[key]
            if spec.kind == "bool":
                options[spec.name] = not value if key.startswith("no-") else bool(value)
            elif spec.repeatable:
                options[spec.name] = tuple(value)
            elif isinstance(value, str):
                try:
                    options[spec.name] = spec.parse(value)
                except TypeError as error:
                    raise usage.UsageError(f"{spec.flag}: {_oneLine(error)}") from None
            else:
                options[spec.name] = value
        return options

    def _checkMetrics(self, path: str) -> None:
        taken = (self["prefix"], DEMO_CHAT_PREFIX, "/")
        if not path.startswith("/") or (path.rstrip("/") or "/") in taken or self["prefix"] == "/":
            raise usage.UsageError(
                f"--metrics {path}: a path starting with '/', beside the SockJS services "
                "(which then need a --prefix other than /)"
            )
        try:
            import txsockjs.metrics  # noqa: F401
        except ImportError as error:
            raise usage.UsageError(f"--metrics: {_oneLine(error)}") from None

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
        if self["redis"] is not None:
            self._checkRedis(self["redis"])
        if self["static"] is not None:
            if not os.path.isdir(self["static"]):
                raise usage.UsageError(f"--static {self['static']}: not a directory")
            if self["prefix"] == "/":
                raise usage.UsageError(
                    "--static serves files at /, so the SockJS service needs a --prefix "
                    "other than /"
                )
        if self["metrics"] is not None:
            self._checkMetrics(self["metrics"])
        if self["log-level"] not in LEVELS:
            raise usage.UsageError(f"--log-level {self['log-level']}: one of {', '.join(LEVELS)}")
        options = self._sockjsOptionValues()
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


for _spec in option_specs():
    if _spec.repeatable and _spec.flag is not None:
        setattr(Options, "opt_" + _spec.flag[2:].replace("-", "_"), _repeatableHandler(_spec))


def demoChannels(config: Options) -> Channels | None:
    """
    The channels of the demo chat: through Redis with ``--redis``, in this process
    otherwise; ``None`` with ``--factory`` (no demo).
    """
    if config.factory is not None:
        return None
    from txsockjs.channels import Channels

    if config["redis"] is None:
        return Channels()
    return Channels(config["redis"], reactor=cast(IReactorTime, config.reactor()))


def buildRoot(
    config: Options,
    resourceFactory: Callable[..., IResource] | None = None,
    channels: Channels | None = None,
) -> IResource:
    """
    Build the resource tree that ``twistd sockjs`` serves.

    :param config: parsed options.
    :param resourceFactory: makes the SockJS resource from a protocol factory, options and
        ``reactor=``; :class:`txsockjs.SockJSResource` unless given.
    :param channels: the demo chat's channels (made from ``config`` unless given).
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
        root = PrefixTree()
    mount(root, prefix, service)
    if demo:
        if channels is None:
            channels = demoChannels(config)
        chat = ChatFactory(channels)
        mount(root, DEMO_CHAT_PREFIX, resourceFactory(chat, **options))
        if config["static"] is None:
            from txsockjs._demo import demo_page

            root.putChild(
                b"",
                demo_page(
                    sockjsURL=config["sockjs-url"],
                    echoPrefix=prefix,
                    chatPrefix=DEMO_CHAT_PREFIX,
                ),
            )
    return root


class _CloseOnStop(Service):
    """
    Drains the SockJS services when twistd stops (SIGTERM): new sessions get 503, every
    session is sent its queued messages and ``c[1001,...]``, within ``--drain-timeout``;
    then closes the channels' Redis connections. Connects those at start-up.
    """

    def __init__(self, resources: list[Any], channels: Channels | None = None) -> None:
        self.resources = resources
        self.channels = channels

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        if self.channels is not None:
            self.channels.start()

    def stopService(self) -> Deferred[Any]:
        super().stopService()  # type: ignore[no-untyped-call]
        drained = gatherResults([resource.drain() for resource in self.resources])
        channels = self.channels
        if channels is not None:
            return drained.addCallback(lambda _: channels.close())
        return drained


def servedPaths(config: Options) -> list[tuple[str, str]]:
    """
    What ``twistd sockjs`` serves and where, as logged at startup: ``(what, path)`` pairs
    such as ``("SockJS echo service", "/echo")``, ``("demo page", "/")``.
    """
    prefix: str = config["prefix"]
    paths: list[tuple[str, str]] = []
    if config.factory is None:
        paths.append(("SockJS echo service", prefix))
        paths.append(("SockJS demo chat", DEMO_CHAT_PREFIX))
        if config["static"] is None:
            paths.append(("demo page", "/"))
    else:
        paths.append((f"SockJS service of {config['factory']}", prefix))
    if config["static"] is not None:
        paths.append((f"files of {config['static']}", "/"))
    if config["metrics"] is not None:
        paths.append(("Prometheus metrics", config["metrics"]))
    return paths


class _StartupLog(ServingLog):
    """
    Started after the listening services: sets the level of the txsockjs events
    (``--log-level``), then logs each URL served once its port listens.
    """

    def __init__(
        self, listening: list[IService], paths: list[tuple[str, str]], logLevel: str
    ) -> None:
        super().__init__(listening, paths)
        self.logLevel = logLevel

    def startService(self) -> None:
        set_log_level(self.logLevel)
        super().startService()


def makeService(config: Options) -> IService:
    """
    Make the service ``twistd sockjs`` runs: one listening service per ``--listen``, all
    serving one site; starting it sets the level of the txsockjs events (``--log-level``)
    and logs each URL served once listening; stopping it closes every SockJS session.
    """
    from txsockjs import SockJSResource, SockJSSite

    made: list[SockJSResource] = []

    def resourceFactory(factory: IProtocolFactory, **options: Any) -> SockJSResource:
        resource = SockJSResource(factory, **options)
        made.append(resource)
        return resource

    channels = demoChannels(config)
    root = buildRoot(config, resourceFactory, channels)
    if config["metrics"] is not None:
        from txsockjs.metrics import MetricsResource

        # buildRoot made the service at --prefix first, then the demo chat's.
        named = dict(zip([config["prefix"], DEMO_CHAT_PREFIX], made, strict=False))
        mount(cast(Resource, root), config["metrics"], MetricsResource(named))
    site = SockJSSite(
        root,
        max_body_bytes=config.sockjsOptions["max_message_bytes"],
        access_log=bool(config["access-log"]),
    )
    service = MultiService()
    listening: list[IService] = []
    for description in config["listen"]:
        listener = strports.service(description, site, reactor=config.reactor())
        listener.setServiceParent(service)
        listening.append(listener)
    service.addService(_StartupLog(listening, servedPaths(config), config["log-level"]))
    service.addService(_CloseOnStop(made, channels))
    return service
