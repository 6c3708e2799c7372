"""
Where SockJS services are mounted: one normaliser of prefixes and one mounter, used by the
listening factories and by ``twistd sockjs`` alike.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from .responses import not_found


def mount_prefix(request: IRequest, depth: int) -> str:
    """The path a service is mounted at: the request's path less its last ``depth`` parts."""
    prepath = request.prepath or []
    return "/" + "/".join(part.decode("utf-8", "replace") for part in prepath[:-depth])


def normalize_prefix(prefix: str) -> str:
    """
    ``prefix`` as services are mounted at it: starting with ``/``, no trailing ``/``
    (``"/"`` itself stays), no empty, ``.`` or ``..`` segment.

    :raises TypeError: for anything but a ``str``.
    :raises ValueError: for a prefix that does not start with ``/`` or has a bad segment.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str such as '/echo', not {prefix!r}")
    if not prefix.startswith("/"):
        raise ValueError(f"prefix must start with '/', not {prefix!r}")
    stripped = prefix.rstrip("/")
    for segment in stripped.split("/")[1:]:
        if segment in ("", ".", ".."):
            raise ValueError(f"prefix {prefix!r} has an empty, '.' or '..' segment")
    return stripped or "/"


class NotFound(Resource):
    """A plain-text 404 for every path under it: what SockJS services answer."""

    isLeaf = True

    def render(self, request: Any) -> bytes:
        return not_found(request)


class PrefixTree(Resource):
    """
    A resource tree of services mounted at prefixes (``/echo``, ``/chat/room``), with
    plain-text 404s for every other path. A service mounted at ``/`` is the whole tree.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        #: What serves ``/``: this tree, or the one service mounted at ``/``.
        self.root: IResource = self

    def getChild(self, path: bytes, request: Any) -> Resource:
        return NotFound()  # type: ignore[no-untyped-call]

    def render(self, request: Any) -> bytes:
        return not_found(request)

    def mount(self, prefix: str, resource: IResource) -> None:
        """
        Put ``resource`` at ``prefix`` (normalised), making the levels between.

        :raises ValueError: when ``/`` is to be shared with another service.
        """
        prefix = normalize_prefix(prefix)
        if self.root is not self:
            raise ValueError("a service mounted at '/' cannot share the site with others")
        if prefix == "/":
            if self.children:
                raise ValueError("a service at '/' cannot share the site with others")
            self.root = resource
            return
        mount(self, prefix, resource)


def mount(root: Resource, prefix: str, resource: IResource) -> None:
    """
    Put ``resource`` at ``prefix`` (normalised, not ``/``) under ``root``, any
    ``twisted.web`` resource (a static ``File`` too), making the levels between as
    :class:`PrefixTree` nodes, which answer other paths with the plain-text 404.

    :raises ValueError: for the prefix ``/`` or a malformed one.
    """
    prefix = normalize_prefix(prefix)
    if prefix == "/":
        raise ValueError("the prefix '/' is the root itself, not a child of it")
    segments = [part.encode("utf-8") for part in prefix.strip("/").split("/")]
    node = root
    for segment in segments[:-1]:
        child = node.children.get(segment)
        if not isinstance(child, Resource):
            child = PrefixTree()
            node.putChild(segment, child)
        node = child
    node.putChild(segments[-1], resource)
