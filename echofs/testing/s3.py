"""S3 endpoints in real EchoFS processes, for tests: an embedded node with
its S3 port (HTTP or HTTPS with a throwaway certificate), boto3 clients for
it, and its REST API for accounts and access keys."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config

from echofs.testing.process import ServeProcess, free_port

# Single-user mode accepts any key: these are what the README suggests.
OPEN_KEY, OPEN_SECRET = "echofs", "echofs-secret-key"
JWT_SECRET = "s3-tests-" + "x" * 40


@dataclass
class S3Node:
    process: ServeProcess
    s3_port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def client(self, key: str = OPEN_KEY, secret: str = OPEN_SECRET, **config: object):
        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=key,
            aws_secret_access_key=secret, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                          **config))  # type: ignore[arg-type]

    def rest(self, method: str, path: str, body: dict | None = None,
             token: str | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.process.url}{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {token}"} if token else {})})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read() or b"{}")


def start_s3_node(root: Path, *args: str, env: dict[str, str] | None = None) -> S3Node:
    port = free_port()
    process = ServeProcess(root / "data", "--s3-port", str(port), *args,
                           env={"LOG_LEVEL": "info", **(env or {})}).start()
    return S3Node(process, port)




def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "s3.crt", directory / "s3.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class TlsNode(S3Node):
    cert: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.s3_port}"

    def client(self, key: str = OPEN_KEY, secret: str = OPEN_SECRET, **config: object):
        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=key,
            aws_secret_access_key=secret, region_name="us-east-1", verify=str(self.cert),
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                          **config))  # type: ignore[arg-type]
