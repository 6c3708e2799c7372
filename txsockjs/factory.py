"""
The module names of txsockjs 1.x, kept so its users can upgrade without changing imports.

New code imports from :mod:`txsockjs` directly.
"""

from ._web.factory import SockJSFactory, SockJSMultiFactory
from ._web.resource import SockJSResource

__all__ = ["SockJSFactory", "SockJSMultiFactory", "SockJSResource"]
