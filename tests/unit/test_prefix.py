"""One prefix normaliser and one mounter, for the listening factories and twistd sockjs."""

from __future__ import annotations

import pytest
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.wire import Echo
from twisted.web.resource import Resource

from txsockjs import SockJSFactory, SockJSMultiFactory, tap
from txsockjs._web.prefix import PrefixTree, normalize_prefix

from .fakehttp import FakeHTTP


@pytest.mark.parametrize(
    ("prefix", "normal"), [("/", "/"), ("/echo/", "/echo"), ("/a/b", "/a/b"), ("///", "/")]
)
def test_normalize_prefix(prefix: str, normal: str) -> None:
    assert normalize_prefix(prefix) == normal


@pytest.mark.parametrize("prefix", ["echo", "/a//b", "/a/../b", "/./x"])
def test_malformed_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError):
        normalize_prefix(prefix)


def not_found_of(root: Resource, path: str) -> tuple[int, bytes]:
    http = FakeHTTP(root)
    http.site.resource = root
    response = http.get(path).response
    return response.status, response.body


def test_factories_and_twistd_answer_unknown_paths_alike() -> None:
    multi = SockJSMultiFactory(reactor=MemoryReactorClock())
    multi.addFactory(Factory.forProtocol(Echo), "/a/echo")
    config = tap.Options(reactor=MemoryReactorClock())
    config.parseOptions(["--factory", "twisted.protocols.wire.Echo", "--prefix", "/a/echo"])
    twistd_root = tap.buildRoot(config)
    expected = (404, b"404 Error: Page not found\n")
    for path in ("/nothing", "/a/nothing", "/a"):
        assert not_found_of(multi.resource, path) == expected
        assert not_found_of(twistd_root, path) == expected
    multi.stopFactory()


def test_a_single_service_factory_is_not_a_multi_factory() -> None:
    factory = SockJSFactory(
        Factory.forProtocol(Echo), prefix="/echo", reactor=MemoryReactorClock()
    )
    assert not isinstance(factory, SockJSMultiFactory)
    assert not hasattr(factory, "addFactory")
    assert isinstance(factory.resource, PrefixTree)
    factory.stopFactory()
