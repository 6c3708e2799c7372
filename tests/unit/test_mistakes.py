"""A programmer's mistakes get a clear error at construction, naming the argument."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.protocol import Factory
from twisted.protocols.wire import Echo

from txsockjs import MessageProtocol, SockJSFactory, SockJSMultiFactory, SockJSResource


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (Echo, "not the protocol class Echo: use Factory.forProtocol(Echo)"),
        (Echo(), "not the protocol <twisted.protocols.wire.Echo"),
        ("pkg.factory", "not the name 'pkg.factory'"),
        (object(), "has no buildProtocol, doStart, doStop"),
    ],
)
def test_a_factory_is_checked(factory: Any, message: str) -> None:
    for make in (SockJSResource, SockJSFactory):
        with pytest.raises(TypeError, match="factory must be a protocol factory") as caught:
            make(factory)
        assert message in str(caught.value)


def test_a_prefix_given_in_place_of_options() -> None:
    with pytest.raises(TypeError, match=r"write prefix='/echo'"):
        SockJSFactory(Factory.forProtocol(Echo), "/echo")  # type: ignore[arg-type]


def test_add_factory_takes_a_str_prefix() -> None:
    with pytest.raises(TypeError, match=r"prefix must be a str such as '/echo', not b'/echo'"):
        SockJSMultiFactory().addFactory(Factory.forProtocol(Echo), b"/echo")  # type: ignore[arg-type]


def test_send_message_of_bytes() -> None:
    with pytest.raises(TypeError, match="sendMessage\\(\\) takes str, not bytes"):
        MessageProtocol().sendMessage(b"x")  # type: ignore[arg-type]
