"""
txsockjs: a SockJS server for Twisted.

Any Twisted protocol factory, served over every SockJS transport (websocket, xhr-streaming,
eventsource, htmlfile, xhr-polling, jsonp-polling) as a ``twisted.web`` resource or a
listening factory.
"""

from ._core.message import MessageProtocol, broadcast
from ._core.options import DEFAULT_SOCKJS_URL, SockJSOptions
from ._web.factory import SockJSFactory, SockJSMultiFactory, SockJSSite
from ._web.request import BodyLimitedRequest, body_limited_request
from ._web.resource import SockJSResource
from .interfaces import IBinaryMessageReceiver, ISockJSTransport

__version__ = "2.0.0.dev0"

__all__ = [
    "DEFAULT_SOCKJS_URL",
    "BodyLimitedRequest",
    "IBinaryMessageReceiver",
    "ISockJSTransport",
    "MessageProtocol",
    "SockJSFactory",
    "SockJSMultiFactory",
    "SockJSOptions",
    "SockJSResource",
    "SockJSSite",
    "__version__",
    "body_limited_request",
    "broadcast",
]
