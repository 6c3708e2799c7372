"""
The protocol each ``twistd sockjs`` process of the scale-out tests serves
(``--factory tests.integration.scaleout_app.factory``): an echo that also answers ``who``
with the name of its process (``$SCALEOUT_NAME``), so a client learns its backend.
"""

from __future__ import annotations

import os

from twisted.internet.protocol import Factory, Protocol


class WhoEcho(Protocol):
    """Echoes every message; ``who`` gets ``who:<name of this process>``."""

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        if data == b"who":
            self.transport.write(b"who:" + os.environ.get("SCALEOUT_NAME", "?").encode())
        else:
            self.transport.write(data)


factory = Factory.forProtocol(WhoEcho)
