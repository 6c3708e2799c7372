"""The public surface: names, 1.x compatibility, mounting."""

from __future__ import annotations

from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.web.resource import Resource

import txsockjs
from txsockjs import SockJSFactory, SockJSMultiFactory, SockJSResource
from txsockjs.factory import SockJSFactory as LegacyFactory
from txsockjs.factory import SockJSMultiFactory as LegacyMulti
from txsockjs.factory import SockJSResource as LegacyResource
from txsockjs.utils import broadcast as legacy_broadcast

from .fakehttp import FakeHTTP


def test_public_names() -> None:
    assert set(txsockjs.__all__) >= {
        "SockJSResource",
        "SockJSFactory",
        "SockJSMultiFactory",
        "SockJSOptions",
        "ISockJSTransport",
        "MessageProtocol",
        "broadcast",
    }
    for name in txsockjs.__all__:
        assert getattr(txsockjs, name) is not None


def test_legacy_module_names() -> None:
    assert LegacyFactory is SockJSFactory
    assert LegacyMulti is SockJSMultiFactory
    assert LegacyResource is SockJSResource

    class Recorder:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.written.append(data)

    target = Recorder()
    legacy_broadcast(b"caf\xc3\xa9", [target])  # type: ignore[list-item]
    txsockjs.broadcast([target], "tea")  # type: ignore[list-item]
    assert target.written == ["café".encode(), b"tea"]


def echo() -> Factory:
    return Factory.forProtocol(Protocol)


def test_resources_mount_anywhere_several_at_once() -> None:
    root = Resource()
    deep = Resource()
    root.putChild(b"a", deep)
    deeper = Resource()
    deep.putChild(b"b", deeper)
    one = SockJSResource(echo(), reactor=Clock())
    two = SockJSResource(echo(), {"streaming_limit": 10}, reactor=Clock())
    deeper.putChild(b"one", one)
    root.putChild(b"two", two)
    http = FakeHTTP(root)
    assert http.get("/a/b/one").response.body == b"Welcome to SockJS!\n"
    assert http.get("/two/").response.body == b"Welcome to SockJS!\n"
    assert http.post("/a/b/one/0/x/xhr").response.body == b"o\n"
    one.close()
    two.close()


def test_multi_factory_prefixes() -> None:
    site = SockJSMultiFactory(reactor=Clock())
    site.addFactory(echo(), "echo")
    site.addFactory(echo(), "/chat/room", {"cookie_needed": True})
    http = FakeHTTP(Resource())
    http.site = site
    assert http.get("/echo").response.status == 200
    assert http.get("/chat/room/info").response.status == 200
    assert b'"cookie_needed":true' in http.get("/chat/room/info").response.body
    assert http.get("/chat").response.status == 404
    assert http.get("/nope").response.status == 404
    site.stopFactory()


def test_factory_with_prefix() -> None:
    site = SockJSFactory(echo(), prefix="/sock", reactor=Clock())
    http = FakeHTTP(Resource())
    http.site = site
    assert http.get("/sock/").response.body == b"Welcome to SockJS!\n"
    assert http.post("/sock/0/x/xhr").response.body == b"o\n"
    site.stopFactory()
    assert len(site.sockjs.service) == 0


def test_upgrade_to_unknown_path_is_404_and_serving_goes_on() -> None:
    site = SockJSFactory(echo(), reactor=Clock())
    http = FakeHTTP(Resource())
    http.site = site
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw==",
    }
    for path in ["/nope", "/a/b/c/d", "/0/0/nope"]:
        assert http.get(path, headers=upgrade).response.status == 404
    assert http.post("/0/0/websocket", headers=upgrade).response.status == 405
    assert http.get("/").response.status == 200
    site.stopFactory()


def test_sockjs_sites_skip_twisted_form_parsing() -> None:
    from twisted.internet.testing import StringTransport
    from twisted.web.http import HTTPChannel

    site = SockJSFactory(echo(), reactor=Clock())
    channel = HTTPChannel()
    channel.site = site
    channel.makeConnection(StringTransport())
    assert site.requestFactory(channel)._parsePOSTFormSubmission is False
    site.stopFactory()
