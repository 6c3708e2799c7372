"""
A rate limit per client address, with a bounded table and no timer.

Each address has a token bucket of ``burst`` tokens refilled at ``rate`` per second, kept as
one number: the time at which its bucket will be full again (the "theoretical arrival time"
of the generic cell rate algorithm). Taking a token moves that time ``1 / rate`` later; a
token is refused while it lies more than ``(burst - 1) / rate`` ahead of now.

An address whose bucket is full again is indistinguishable from one never seen, so it is
dropped from the table when met; the table is kept in least-recently-used order, so those
are found at its front. Should more distinct addresses than ``max_addresses`` be active at
once (a flood from many addresses), the least recently used one is dropped even though its
bucket is not full: that address starts again with a full bucket, and memory stays bounded.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IReactorTime


def address_key(address: IAddress) -> str | None:
    """
    The key an address is limited by, or ``None`` for an address that is not limited.

    An IPv4 address is its own key; an IPv6 address is keyed by its ``/64`` network (one
    host usually holds a whole ``/64``, so counting its addresses one by one would count
    nothing), except an IPv4-mapped one, keyed as its IPv4 address. Loopback addresses,
    UNIX sockets and anything else that is not an IP address are not limited: every client
    of a proxy on the same host, not listed in ``trusted_proxies``, arrives from loopback,
    and limiting them together would let one of them refuse all the others.
    """
    if isinstance(address, IPv4Address):
        # A dotted quad, as the socket or a validated X-Forwarded-For hop gives it.
        host = address.host
        return None if host.startswith("127.") else host
    if not isinstance(address, IPv6Address):
        return None
    host = address.host.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class RateLimiter:
    """
    Token buckets by key.

    :param clock: the time source.
    :param rate: tokens per second added to each bucket (more than 0).
    :param burst: tokens a bucket holds when full (at least 1).
    :param max_addresses: the most keys remembered at once (at least 1).
    """

    def __init__(self, clock: IReactorTime, rate: float, burst: int, max_addresses: int):
        if rate <= 0 or burst < 1 or max_addresses < 1:
            raise ValueError("rate must be positive, burst and max_addresses at least 1")
        self._clock = clock
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._max = max_addresses
        #: Key -> the time its bucket is full again; least recently used first.
        self._full_at: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        """The number of keys remembered."""
        return len(self._full_at)

    def take(self, key: str, consume: bool = True) -> float:
        """
        Take a token from ``key``'s bucket.

        :param consume: ``False`` only asks whether a token is there, and takes none.
        :return: ``0.0`` when a token was there (and, with ``consume``, taken), else the
            seconds until one will be.
        """
        now = self._clock.seconds()
        table = self._full_at
        full_at = table.get(key)
        if full_at is None:
            # Never seen, or forgotten with a full bucket: a token is there.
            if consume:
                self._make_room(now)
                table[key] = now + self._interval
            return 0.0
        table.move_to_end(key)
        if full_at < now:
            full_at = now
        wait = full_at - now - self._tolerance
        if wait > 1e-9:
            return wait
        if consume:
            table[key] = full_at + self._interval
        return 0.0

    def _make_room(self, now: float) -> None:
        """Drop the keys whose bucket is full again, then the oldest ones beyond the cap."""
        table = self._full_at
        while table:
            key, full_at = next(iter(table.items()))
            if full_at > now:
                break
            del table[key]
        while len(table) >= self._max:
            table.popitem(last=False)
