"""
Checks of what the public entry points are given, so that a programmer's mistake is a clear
``TypeError`` or ``ValueError`` at construction, naming the argument, and not a failure of
the first session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.interfaces import IProtocol


def check_factory(factory: Any, argument: str = "factory") -> None:
    """
    Require a protocol factory: something with ``buildProtocol``, ``doStart`` and
    ``doStop``, as :class:`twisted.internet.protocol.Factory` has.

    :raises TypeError: naming what was given instead, and what to write.
    """
    if isinstance(factory, type):
        if IProtocol.implementedBy(factory) or hasattr(factory, "dataReceived"):
            raise TypeError(
                f"{argument} must be a protocol factory, not the protocol class "
                f"{factory.__name__}: use Factory.forProtocol({factory.__name__})"
            )
        raise TypeError(
            f"{argument} must be a protocol factory instance, not the class {factory.__name__}"
        )
    if isinstance(factory, (str, bytes)):
        raise TypeError(
            f"{argument} must be a protocol factory, not the name {factory!r}: import it "
            "(twisted.python.reflect.namedAny loads a dotted name)"
        )
    if IProtocol.providedBy(factory) and not hasattr(factory, "buildProtocol"):
        raise TypeError(
            f"{argument} must be a protocol factory, not the protocol {factory!r}: use "
            f"Factory.forProtocol({type(factory).__name__})"
        )
    missing = [
        name
        for name in ("buildProtocol", "doStart", "doStop")
        if not callable(getattr(factory, name, None))
    ]
    if missing:
        raise TypeError(
            f"{argument} must be a protocol factory (an IProtocolFactory, such as "
            f"Factory.forProtocol(...)); {factory!r} has no {', '.join(missing)}"
        )


def check_options(options: Any, argument: str = "options") -> None:
    """
    Require a mapping of options, a ``SockJSOptions`` or ``None``.

    :raises TypeError: for anything else; a string most likely meant ``prefix=``.
    """
    from .options import SockJSOptions

    if options is None or isinstance(options, (Mapping, SockJSOptions)):
        return
    hint = (
        f"; to mount the service there, write prefix={options!r}"
        if isinstance(options, str)
        else ""
    )
    raise TypeError(
        f"{argument} must be a dict of options or a SockJSOptions, not "
        f"{type(options).__name__} {options!r}{hint}"
    )


def check_prefix(prefix: Any, argument: str = "prefix") -> None:
    """
    Require a ``str`` prefix.

    :raises TypeError: for bytes or anything else.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"{argument} must be a str such as '/echo', not {prefix!r}")
