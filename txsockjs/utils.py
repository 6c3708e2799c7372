"""
The helpers module of txsockjs 1.x, kept so its users can upgrade without changing imports.

New code imports :func:`txsockjs.broadcast` directly.
"""

from ._message import broadcast

__all__ = ["broadcast"]
