"""A DNS-over-TLS server for the tests (RFC 7858), on a random loopback port.

It answers every A query for NAME with 192.0.2.1 (TTL 300) and records what
it saw: connections, TLS sessions resumed, each query's wire form. Its
behaviour is set per test:

- batch=N: read N queries (pipelined on one connection) before answering,
  then answer them in reverse order (RFC 7766 out-of-order answers); a
  batch not full after half a second without a query is answered as is;
- close_after_answer: close the connection (cleanly) after each answer,
  leaving any queries pipelined behind it unanswered;
- handshake_delay: seconds to wait after accept before the TLS handshake;
- cert: which certificate it shows (made by CertAuthority: "good", "wrong-name",
  "expired").

Certificates come from a CA made for the test run with python3-cryptography.
"""

import datetime
import socket
import ssl
import struct
import threading
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.rcode
import dns.rrset

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import harness

TLS_NAME = "dot.test"


class CertAuthority:
    """A CA and the server certificates the tests need, as PEM files in dir."""

    def __init__(self, dir: Path):
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dnswarden test CA")])
        self.cert = (x509.CertificateBuilder()
                     .subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))
        self.ca_file = self.dir / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.files = {
            "good": self._server(TLS_NAME, now, now + datetime.timedelta(days=30)),
            "wrong-name": self._server("other.test", now, now + datetime.timedelta(days=30)),
            "expired": self._server(TLS_NAME, now - datetime.timedelta(days=30),
                                    now - datetime.timedelta(days=1)),
        }

    def _server(self, dnsname, start, end):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dnsname)]))
                .issuer_name(self.cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start - datetime.timedelta(hours=1))
                .not_valid_after(end)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(dnsname)]), False)
                .sign(self.key, hashes.SHA256()))
        tag = f"{dnsname}-{int(end.timestamp())}"
        certf, keyf = self.dir / f"{tag}.pem", self.dir / f"{tag}.key"
        certf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keyf.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        return certf, keyf


class DotServer:
    def __init__(self, ca: CertAuthority, cert="good", batch=1, close_after_answer=False,
                 handshake_delay=0.0):
        certf, keyf = ca.files[cert]
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(certf, keyf)
        self.batch = batch
        self.close_after_answer = close_after_answer
        self.handshake_delay = handshake_delay
        self.lock = threading.Lock()
        self.connections = 0      # TCP connections accepted
        self.handshakes = 0       # TLS handshakes completed
        self.resumed = 0          # of those, resumed sessions
        self.open = 0             # connections open now
        self.max_open = 0
        self.queries = []         # (connection number, wire)
        self.order = []           # IDs in the order answered
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def server(self) -> dict:
        """The upstreams entry for dnswarden's configuration."""
        return {"address": self.address, "tls_name": TLS_NAME}

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            t = threading.Thread(target=self._serve, args=(conn, number), daemon=True)
            t.start()

    def _answer(self, wire: bytes) -> bytes:
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        qname = q.question[0].name
        if q.question[0].rdtype == 1:
            r.answer.append(dns.rrset.from_text(qname, 300, "IN", "A", "192.0.2.1"))
        return r.to_wire()

    def _serve(self, raw, number):
        with self.lock:
            self.open += 1
            self.max_open = max(self.max_open, self.open)
        try:
            if self.handshake_delay:
                time.sleep(self.handshake_delay)
            raw.settimeout(10)
            try:
                conn = self.ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                return
            with self.lock:
                self.handshakes += 1
                self.resumed += conn.session_reused
            while not self.stopping:
                pending = []
                while len(pending) < self.batch:
                    # A batch is answered once full, or when no query came
                    # for a while (one lost on the way must not stall it).
                    conn.settimeout(0.5 if pending else 10)
                    try:
                        head = harness.recv_exactly(conn, 2)
                    except socket.timeout:
                        break
                    conn.settimeout(10)
                    if head is None:
                        return
                    wire = harness.recv_exactly(conn, struct.unpack("!H", head)[0])
                    if wire is None:
                        return
                    with self.lock:
                        self.queries.append((number, wire))
                    pending.append(wire)
                for wire in reversed(pending):
                    out = self._answer(wire)
                    # Noted before it is written: the client may read the
                    # answer, and a test self.order, before sendall returns.
                    with self.lock:
                        self.order.append(struct.unpack("!H", wire[:2])[0])
                    conn.sendall(struct.pack("!H", len(out)) + out)
                if self.close_after_answer:
                    # Close after the answer, as a server with a limit of
                    # one query a connection does: no more writes, the
                    # queries behind it read and dropped until the client
                    # closes (closing on unread data would reset the
                    # connection and could lose the answer just sent).
                    conn.shutdown(socket.SHUT_WR)
                    conn.settimeout(2)
                    try:
                        while conn.recv(4096):
                            pass
                    except (OSError, ssl.SSLError):
                        pass
                    return
        except (OSError, ssl.SSLError, dns.exception.DNSException):
            return
        finally:
            with self.lock:
                self.open -= 1
            raw.close()

    def close(self):
        self.stopping = True
        self.sock.close()
