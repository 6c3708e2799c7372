"""
The protocol ``tests/integration/test_drain.py`` serves with ``twistd sockjs --factory``.

It echoes, except ``burst COUNT SIZE``: COUNT messages of SIZE bytes (each starting with its
number) written in one go, and then a log line saying so, which the test waits for.
"""

from __future__ import annotations

from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

_log = Logger()


class Burst(Protocol):
    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        words = data.split()
        if words[:1] == [b"burst"]:
            count, size = int(words[1]), int(words[2])
            for n in range(count):
                head = b"%06d:" % n
                self.transport.write(head + b"x" * (size - len(head)))
            _log.info("drain_app: burst of {count} written", count=count)
        else:
            self.transport.write(data)


factory = Factory.forProtocol(Burst)
