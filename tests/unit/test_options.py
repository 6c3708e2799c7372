"""Options: defaults, validation, txsockjs 1.x names."""

from __future__ import annotations

import ipaddress

import pytest
from twisted.internet.protocol import Factory, Protocol

from txsockjs import SockJSOptions, SockJSResource


def test_defaults_follow_sockjs_node() -> None:
    options = SockJSOptions()
    assert options.response_limit == 128 * 1024
    assert options.heartbeat_delay == 25
    assert options.disconnect_delay == 5
    assert options.websocket is True
    assert options.jsessionid is False
    assert options.max_message_bytes == 1024 * 1024


def test_legacy_dict_names() -> None:
    options = SockJSOptions.from_kwargs(
        {"streaming_limit": 10, "heartbeat": 3, "timeout": 7, "cookie_needed": True}
    )
    assert (options.response_limit, options.heartbeat_delay) == (10, 3)
    assert (options.disconnect_delay, options.jsessionid) == (7, True)


def test_trusted_proxies_parsed() -> None:
    options = SockJSOptions.from_kwargs(trusted_proxies=["10.0.0.0/8", "::1"])
    assert ipaddress.ip_address("10.1.2.3") in options.trusted_proxies[0]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"response_limit": 0}, ValueError),
        ({"response_limit": "big"}, TypeError),
        ({"heartbeat_delay": -1}, ValueError),
        ({"disconnect_delay": True}, TypeError),
        ({"sockjs_url": "javascript:alert(1)"}, ValueError),
        ({"sockjs_url": '/x"><script>'}, ValueError),
        ({"disabled_transports": ["carrier-pigeon"]}, ValueError),
        ({"websocket": "yes"}, TypeError),
        ({"jsessionid": "on"}, TypeError),
        ({"low_watermark": 10, "high_watermark": 5}, ValueError),
        ({"no_such_option": 1}, TypeError),
        ({"trusted_proxies": ["not-an-ip"]}, ValueError),
    ],
)
def test_invalid_values_raise_at_construction(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        SockJSResource(Factory.forProtocol(Protocol), **kwargs)


def test_disabled_transport_names() -> None:
    options = SockJSOptions.from_kwargs(disabled_transports="eventsource", websocket=False)
    assert not options.enabled("eventsource")
    assert not options.enabled("websocket") and not options.enabled("raw-websocket")
    assert options.enabled("xhr-streaming")


def test_the_options_documentation_covers_every_option() -> None:
    """doc/options.rst is written by hand: it must not drift from the declarations."""
    from pathlib import Path

    from txsockjs._core.options import option_specs

    text = (Path(__file__).parents[2] / "doc" / "options.rst").read_text()
    for spec in option_specs():
        assert f"``{spec.name}``" in text, f"doc/options.rst does not describe {spec.name}"
        if spec.flag is not None:
            assert spec.flag in text, f"doc/options.rst does not name {spec.flag}"


def test_text_forms_share_the_messages_of_the_options() -> None:
    from txsockjs._web.endpoint import parse_option_values

    with pytest.raises(ValueError, match="max_sessions must be an integer, not '1.5'"):
        parse_option_values({"max_sessions": "1.5"})
    options, rest = parse_option_values(
        {"heartbeat": "2", "websocket": "off", "interface": "127.0.0.1", "encoding": "x"}
    )
    assert options == {"heartbeat": 2.0, "websocket": False}
    assert rest == {"interface": "127.0.0.1"}
