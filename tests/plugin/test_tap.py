"""
``twistd sockjs`` options and service, without running a reactor: endpoints are parsed and
listened on with a memory reactor.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.wire import Echo
from twisted.python.usage import UsageError
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import File

from txsockjs import SockJSOptions, SockJSResource, tap
from txsockjs._core.options import option_specs

#: Every option of SockJSOptions, and the flag that sets it (None: not a flag, and why).


def parse(*argv: str) -> tap.Options:
    options = tap.Options(reactor=MemoryReactorClock())
    options.parseOptions(list(argv))
    return options


def usageError(*argv: str) -> str:
    with pytest.raises(UsageError) as caught:
        parse(*argv)
    message = str(caught.value)
    assert "\n" not in message, message
    assert message
    return message


class Recorder:
    """Stands in for SockJSResource: records what the tree was built with."""

    def __init__(self) -> None:
        self.made: list[tuple[Any, dict[str, Any], Resource]] = []

    def __call__(self, factory: Any, **options: Any) -> Resource:
        resource = Resource()
        self.made.append((factory, options, resource))
        return resource


def child(resource: Any, *path: bytes) -> Any:
    for segment in path:
        resource = resource.children[segment]
    return resource


def test_everyOptionHasAFlag() -> None:
    """Every option with a text form has a flag, derived from its declaration."""
    usage = str(tap.Options())
    flags = {spec.name: spec.flag for spec in option_specs()}
    assert set(flags) == {field.name for field in dataclasses.fields(SockJSOptions)}
    for name, flag in flags.items():
        if name not in ("prefix", "log"):
            assert flag is not None and flag in usage, name
    # The flags users already type keep their names.
    assert flags["websocket"] == "--no-websocket"
    assert flags["disabled_transports"] == "--disable-transport"
    assert flags["trusted_proxies"] == "--trusted-proxy"
    assert flags["heartbeat_delay"] == "--heartbeat-delay"
    for flag in ("--listen", "--factory", "--static", "--access-log", "--prefix"):
        assert flag in usage


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--max-sessions", "1.5"), "--max-sessions: max_sessions must be an integer, not '1.5'"),
        (("--max-sessions", "0"), "max_sessions must be at least 1, not 0"),
        (("--base-url", "foo"), "base_url must start with http://, https:// or /, not 'foo'"),
    ],
)
def test_oneMessagePerMistake(argv: tuple[str, ...], message: str) -> None:
    assert usageError(*argv) == message


def test_defaults() -> None:
    options = parse()
    assert options["listen"] == ["tcp:8080"]
    assert options["prefix"] == "/echo"
    assert options.factory is None
    built = SockJSOptions.from_kwargs(**options.sockjsOptions)
    assert built == SockJSOptions()


def test_everyFlag() -> None:
    options = parse(
        "--listen=tcp:0",
        "--listen",
        "unix:/tmp/txsockjs-test.sock",
        "--factory=twisted.protocols.wire.Echo",
        "--prefix=/app/",
        "--sockjs-url=/static/sockjs.js",
        "--heartbeat-delay=2.5",
        "--disconnect-delay=7",
        "--response-limit=4096",
        "--max-message-bytes=1000",
        "--max-sessions=10",
        "--high-watermark=5000",
        "--low-watermark=100",
        "--trusted-proxy=10.0.0.0/8",
        "--trusted-proxy=::1",
        "--base-url=https://example.test/app",
        "--no-websocket",
        "--jsessionid",
        "--expose-cookies",
        "--disable-cors",
        "--disable-transport=htmlfile",
        "--disable-transport=jsonp-polling",
    )
    assert options["listen"] == ["tcp:0", "unix:/tmp/txsockjs-test.sock"]
    assert options["prefix"] == "/app"
    built = SockJSOptions.from_kwargs(**options.sockjsOptions)
    assert built.sockjs_url == "/static/sockjs.js"
    assert built.heartbeat_delay == 2.5
    assert built.disconnect_delay == 7.0
    assert built.response_limit == 4096
    assert built.max_message_bytes == 1000
    assert built.max_sessions == 10
    assert built.high_watermark == 5000
    assert built.low_watermark == 100
    assert [str(n) for n in built.trusted_proxies] == ["10.0.0.0/8", "::1/128"]
    assert built.base_url == "https://example.test/app"
    assert built.websocket is False
    assert built.jsessionid is True
    assert built.expose_cookies is True
    assert built.disable_cors is True
    assert built.disabled_transports == {"htmlfile", "jsonp-polling"}


@pytest.mark.parametrize(
    "argv",
    [
        ["--heartbeat-delay=soon"],
        ["--heartbeat-delay=0"],
        ["--disconnect-delay=-1"],
        ["--response-limit=lots"],
        ["--max-sessions=-5"],
        ["--high-watermark=10", "--low-watermark=20"],
        ["--disable-transport=carrier-pigeon"],
        ["--trusted-proxy=not-an-address"],
        ["--sockjs-url=javascript:alert(1)"],
        ["--prefix=relative"],
        ["--prefix=/a//b"],
        ["--prefix=/a/../b"],
        ["--listen=carrier-pigeon:8080"],
        ["--listen=tcp:notaport"],
        ["--static=/nonexistent/txsockjs/dir"],
        ["--factory=no.such.module.factory"],
        ["--factory=twisted.protocols.wire.NoSuchThing"],
        ["--factory=os.path"],
        ["--factory=os.getcwd"],
        ["--factory=builtins.ZeroDivisionError"],
        ["--prefix=/chat"],
        ["--log-level=trace"],
        ["--log-level=warn"],
        ["unexpected-argument"],
    ],
)
def test_badValuesAreUsageErrors(argv: list[str]) -> None:
    usageError(*argv)


def test_staticNeedsAPrefix(tmp_path: Any) -> None:
    message = usageError("--static", str(tmp_path), "--factory=twisted.protocols.wire.Echo")
    assert "--prefix" in message


def test_factoryNamesAProtocolClass() -> None:
    options = parse("--factory=twisted.protocols.wire.Echo")
    assert options["prefix"] == "/"
    assert isinstance(options.factory, Factory)
    assert isinstance(options.factory.buildProtocol(None), Echo)


def test_factoryNamesAFactory() -> None:
    options = parse("--factory=txsockjs._demo.EchoFactory")
    from txsockjs._demo import EchoFactory

    assert isinstance(options.factory, EchoFactory)


factoryInstance = Factory.forProtocol(Echo)


def makeFactory() -> Factory:
    return factoryInstance


def failingFactory() -> Factory:
    raise RuntimeError("no database\nconfigured")


def test_factoryNamesAnInstanceOrACallable() -> None:
    assert parse(f"--factory={__name__}.factoryInstance").factory is factoryInstance
    assert parse(f"--factory={__name__}.makeFactory").factory is factoryInstance
    message = usageError(f"--factory={__name__}.failingFactory")
    assert "no database configured" in message


def test_unimportableFactoryHintsAtThePath() -> None:
    message = usageError("--factory=no_such_module_txsockjs.factory")
    assert "PYTHONPATH" in message


def test_demoTree() -> None:
    recorder = Recorder()
    options = parse()
    root = tap.buildRoot(options, recorder)
    (echo, echoOptions, echoResource), (chat, _, chatResource) = recorder.made
    assert child(root, b"echo") is echoResource
    assert child(root, b"chat") is chatResource
    assert type(echo).__name__ == "EchoFactory"
    assert type(chat).__name__ == "ChatFactory"
    assert echoOptions["reactor"] is options.reactor()
    page = child(root, b"")
    assert page is not None


def test_factoryAtTheRoot() -> None:
    recorder = Recorder()
    options = parse("--factory=twisted.protocols.wire.Echo")
    root = tap.buildRoot(options, recorder)
    [(factory, _, resource)] = recorder.made
    assert root is resource
    assert factory is options.factory


def test_staticBesideADeepPrefix(tmp_path: Any) -> None:
    recorder = Recorder()
    options = parse(
        "--factory=twisted.protocols.wire.Echo", "--prefix=/a/b/c", "--static", str(tmp_path)
    )
    root = tap.buildRoot(options, recorder)
    [(_, _, resource)] = recorder.made
    assert isinstance(root, File)
    assert child(root, b"a", b"b", b"c") is resource


def test_staticWithTheDemo(tmp_path: Any) -> None:
    recorder = Recorder()
    root = tap.buildRoot(parse("--static", str(tmp_path)), recorder)
    assert isinstance(root, File)
    assert b"" not in root.children
    assert set(root.children) == {b"echo", b"chat"}


def test_makeServiceListensOnEveryEndpoint() -> None:
    reactor = MemoryReactorClock()
    options = tap.Options(reactor=reactor)
    options.parseOptions(["--listen=tcp:8123", "--listen=tcp:8124:interface=127.0.0.1"])
    service = tap.makeService(options)
    children = list(service)
    assert len(children) == 4
    assert all(isinstance(svc, StreamServerEndpointService) for svc in children[:2])
    service.startService()
    try:
        ports = [(port, interface) for port, _, _, interface in reactor.tcpServers]
        assert ports == [(8123, ""), (8124, "127.0.0.1")]
        sites = {factory for _, factory, _, _ in reactor.tcpServers}
        assert len(sites) == 1
        [site] = sites
        assert isinstance(site, Site)
        assert isinstance(child(site.resource, b"echo"), SockJSResource)
        assert site.accessLog is False  # type: ignore[attr-defined]
    finally:
        service.stopService()


def test_accessLogFlag() -> None:
    options = tap.Options(reactor=MemoryReactorClock())
    options.parseOptions(["--access-log"])
    service = tap.makeService(options)
    [site] = {svc.factory for svc in service if isinstance(svc, StreamServerEndpointService)}
    assert site.accessLog is True


def test_versionNamesTxsockjs(capsys: Any) -> None:
    from txsockjs import __version__

    with pytest.raises(SystemExit) as exited:
        parse("--version")
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"txsockjs {__version__} (Twisted ")


def test_logLevelFlag() -> None:
    assert parse()["log-level"] == "info"
    for level in ("debug", "info", "error"):
        assert parse(f"--log-level={level}")["log-level"] == level
    assert "debug, info, error" in usageError("--log-level=verbose")


@pytest.mark.parametrize("level", ["debug", "info", "error"])
def test_startingSetsTheLevelOfTheTxsockjsEvents(level: str) -> None:
    from txsockjs._core import events as _events

    argv = [] if level == "info" else [f"--log-level={level}"]
    service = tap.makeService(parse(*argv))
    # Making the service changes nothing; starting it does.
    assert _events.log_level() == "debug"
    service.startService()
    try:
        assert _events.log_level() == level
    finally:
        service.stopService()


def test_servedPaths(tmp_path: Any) -> None:
    assert tap.servedPaths(parse()) == [
        ("SockJS echo service", "/echo"),
        ("SockJS demo chat", "/chat"),
        ("demo page", "/"),
    ]
    assert tap.servedPaths(parse("--prefix=/e", "--metrics=/m", f"--static={tmp_path}")) == [
        ("SockJS echo service", "/e"),
        ("SockJS demo chat", "/chat"),
        (f"files of {tmp_path}", "/"),
        ("Prometheus metrics", "/m"),
    ]
    assert tap.servedPaths(parse("--factory=twisted.protocols.wire.Echo")) == [
        ("SockJS service of twisted.protocols.wire.Echo", "/"),
    ]


def test_startupLogsEachURLOnceListening(tmp_path: Any) -> None:
    from twisted.logger import LogLevel, capturedLogs, formatEvent

    socket = tmp_path / "s.sock"
    options = parse(
        "--listen=tcp:8123:interface=127.0.0.1",
        f"--listen=unix:{socket}",
        "--metrics=/metrics",
    )
    service = tap.makeService(options)
    with capturedLogs() as events:
        service.startService()
    try:
        serving = [e for e in events if e.get("sockjs_event") == "serving"]
        assert all(e["log_level"] == LogLevel.info for e in serving)
        # MemoryReactorClock's TCP ports report 0.0.0.0 whatever the interface.
        unix = "http+unix://" + str(socket).replace("/", "%2F")
        assert [formatEvent(e) for e in serving] == [
            "serving: SockJS echo service at http://0.0.0.0:8123/echo",
            "serving: SockJS demo chat at http://0.0.0.0:8123/chat",
            "serving: demo page at http://0.0.0.0:8123/",
            "serving: Prometheus metrics at http://0.0.0.0:8123/metrics",
            f"serving: SockJS echo service at {unix}/echo",
            f"serving: SockJS demo chat at {unix}/chat",
            f"serving: demo page at {unix}/",
            f"serving: Prometheus metrics at {unix}/metrics",
        ]
    finally:
        service.stopService()


def test_listeningFailingAtStartupStopsIt() -> None:
    """As twistd starts it: the error is raised at once, and no URL is logged."""
    from twisted.internet.error import CannotListenError
    from twisted.logger import capturedLogs

    class Refusing(MemoryReactorClock):
        def listenTCP(
            self, port: int, factory: Any, backlog: int = 50, interface: str = ""
        ) -> Any:
            raise CannotListenError(interface, port, OSError("in use"))

    options = tap.Options(reactor=Refusing())
    options.parseOptions(["--listen=tcp:8123"])
    service = tap.makeService(options)
    with capturedLogs() as events, pytest.raises(CannotListenError):
        service.startService()
    assert [e for e in events if e.get("sockjs_event") == "serving"] == []
