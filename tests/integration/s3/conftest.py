"""S3 clients against real EchoFS processes: the embedded node in single-user
mode (any well-formed signature is accepted) and, for accounts and keys, a
node with JWT_SECRET set. Module-scoped: one node serves a module's tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from echofs.testing.s3 import JWT_SECRET, S3Node, TlsNode, self_signed, start_s3_node


@pytest.fixture(scope="module")
def s3_node(tmp_path_factory) -> Iterator[S3Node]:
    node = start_s3_node(tmp_path_factory.mktemp("s3-open"))
    try:
        yield node
    finally:
        node.process.terminate()


@pytest.fixture(scope="module")
def accounts_node(tmp_path_factory) -> Iterator[S3Node]:
    node = start_s3_node(tmp_path_factory.mktemp("s3-accounts"), env={"JWT_SECRET": JWT_SECRET})
    try:
        yield node
    finally:
        node.process.terminate()


@pytest.fixture
def s3(s3_node: S3Node):
    return s3_node.client()


@pytest.fixture
def bucket(s3) -> str:
    name = "b-" + secrets.token_hex(6)
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory) -> Iterator[TlsNode]:
    root = tmp_path_factory.mktemp("s3-tls")
    cert, key = self_signed(root)
    plain = start_s3_node(root, "--s3-tls-cert", str(cert), "--s3-tls-key", str(key))
    node = TlsNode(plain.process, plain.s3_port, cert)
    try:
        yield node
    finally:
        node.process.terminate()
