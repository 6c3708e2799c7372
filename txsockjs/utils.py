"""
The helpers module of txsockjs 1.x, kept so its users can upgrade without changing code.

New code calls :func:`txsockjs.broadcast` (``transports`` first, then the text).
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet.interfaces import ITransport

from ._core.message import broadcast as _broadcast


def broadcast(message: str | bytes, targets: Iterable[ITransport]) -> None:
    """
    Send ``message`` to every transport in ``targets``, encoded once: txsockjs 1.x's
    argument order. ``bytes`` are taken as UTF-8.
    """
    if isinstance(message, bytes):
        message = message.decode("utf-8")
    _broadcast(targets, message)


__all__ = ["broadcast"]
