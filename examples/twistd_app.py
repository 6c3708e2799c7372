"""
A protocol factory for ``twistd sockjs --factory``: no server code of your own at all.

Run it from the repository's root with::

    PYTHONPATH=examples twistd -n sockjs --factory twistd_app.factory --prefix /count

and point sockjs-client at ``http://localhost:8080/count``. ``--factory`` takes a dotted
name of a protocol factory (as here), a protocol class (``twisted.protocols.wire.Echo``) or a
callable returning a factory; every option of ``twistd sockjs --help`` applies, e.g.
``--listen ssl:8443:privateKey=key.pem:certKey=cert.pem`` or ``--static public/``.
"""

from twisted.internet.protocol import Factory, Protocol


class Counter(Protocol):
    """Answers each message with how many messages all clients have sent so far."""

    def dataReceived(self, data):
        self.factory.count += 1
        self.transport.write(b"%d: %s" % (self.factory.count, data))


class CounterFactory(Factory):
    protocol = Counter
    count = 0


factory = CounterFactory()
