"""
SockJS over TLS through an ``ssl:`` endpoint, with a throwaway self-signed certificate.

The certificate is made when the program starts (for ``localhost`` and ``127.0.0.1``, valid
for one day) and written to a temporary directory; in production you would pass your own
``privateKey=`` and ``certKey=`` files to the ``ssl:`` endpoint, or use ``--listen ssl:...``
with ``twistd sockjs``.

Run ``python examples/tls.py [PORT [INTERFACE]]`` (default ``8443``), then use
``https://localhost:8443/echo`` after telling your browser to trust the certificate.
"""

import datetime
import ipaddress
import pathlib
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import endpoints, task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.protocols.wire import Echo

from txsockjs import SockJSFactory

log = Logger()


def makeCertificate(directory):
    """Write a fresh key and self-signed certificate; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    keyPath = directory / "key.pem"
    certPath = directory / "cert.pem"
    keyPath.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certPath.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return keyPath, certPath


def quote(text):
    """Escape a value for an endpoint description."""
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


async def main(reactor, port="8443", interface=""):
    directory = pathlib.Path(tempfile.mkdtemp(prefix="txsockjs-tls-"))
    keyPath, certPath = makeCertificate(directory)
    description = f"ssl:{port}:privateKey={quote(str(keyPath))}:certKey={quote(str(certPath))}"
    if interface:
        description += f":interface={quote(interface)}"
    factory = SockJSFactory(Factory.forProtocol(Echo), prefix="/echo")
    listening = await endpoints.serverFromString(reactor, description).listen(factory)
    log.info("certificate: {path}", path=str(certPath))
    log.info(
        "listening on port {port}: https, echo service at /echo", port=listening.getHost().port
    )
    await Deferred()


if __name__ == "__main__":
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, *sys.argv[1:])))
