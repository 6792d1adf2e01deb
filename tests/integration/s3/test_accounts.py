"""Accounts mode: access keys per account through the REST API, and every
way a request can fail to prove who it is, refused with S3's own code."""

from __future__ import annotations

import datetime
import secrets
import urllib.error
import urllib.request
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def _account(node) -> tuple[str, str, str, str]:
    """A new account: its token, user id and one access key (id, secret)."""
    name = "u" + secrets.token_hex(4)
    login = node.rest("POST", "/api/v1/auth/register",
                      {"username": name, "password": "correct horse battery"})
    token = login["token"]
    key = node.rest("POST", "/api/v1/auth/keys", {}, token=token)
    return token, login["user"].get("id", ""), key["access_key_id"], key["secret_access_key"]


def test_keys_are_created_listed_and_revoked(accounts_node):
    token, _, key_id, secret = _account(accounts_node)
    listed = accounts_node.rest("GET", "/api/v1/auth/keys", token=token)["keys"]
    assert [k["access_key_id"] for k in listed] == [key_id]
    assert "secret_access_key" not in listed[0]  # shown once, at creation
    client = accounts_node.client(key_id, secret)
    client.create_bucket(Bucket=f"k-{key_id.lower()}")
    accounts_node.rest("DELETE", f"/api/v1/auth/keys/{key_id}", token=token)
    with pytest.raises(ClientError) as revoked:
        client.list_buckets()
    assert _code(revoked) == "InvalidAccessKeyId"


def test_another_accounts_bucket_is_refused(accounts_node):
    _, _, alice_id, alice_secret = _account(accounts_node)
    _, _, bob_id, bob_secret = _account(accounts_node)
    alice, bob = (accounts_node.client(alice_id, alice_secret),
                  accounts_node.client(bob_id, bob_secret))
    name = "alice-" + secrets.token_hex(4)
    alice.create_bucket(Bucket=name)
    alice.put_object(Bucket=name, Key="secret.txt", Body=b"alice's")
    with pytest.raises(ClientError) as read:
        bob.get_object(Bucket=name, Key="secret.txt")
    assert _code(read) == "AccessDenied"
    with pytest.raises(ClientError) as write:
        bob.put_object(Bucket=name, Key="x", Body=b"bob's")
    assert _code(write) == "AccessDenied"
    with pytest.raises(ClientError) as listing:
        bob.list_objects_v2(Bucket=name)
    assert _code(listing) == "AccessDenied"
    with pytest.raises(ClientError) as taken:
        bob.create_bucket(Bucket=name)
    assert _code(taken) == "BucketAlreadyExists"
    assert name not in [b["Name"] for b in bob.list_buckets()["Buckets"]]
    assert name in [b["Name"] for b in alice.list_buckets()["Buckets"]]


def test_signature_failures(accounts_node):
    _, _, key_id, secret = _account(accounts_node)
    with pytest.raises(ClientError) as wrong_secret:
        accounts_node.client(key_id, secret[:-2] + "xx").list_buckets()
    assert _code(wrong_secret) == "SignatureDoesNotMatch"
    assert wrong_secret.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as unknown:
        accounts_node.client("EKNOSUCHKEY000000000", secret).list_buckets()
    assert _code(unknown) == "InvalidAccessKeyId"
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{accounts_node.endpoint}/", timeout=5)
    assert anonymous.value.code == 403
    assert b"<Code>AccessDenied</Code>" in anonymous.value.read()


def _signed_at(node, key_id: str, secret: str, when: datetime.datetime) -> urllib.request.Request:
    request = AWSRequest(method="GET", url=f"{node.endpoint}/")
    signer = S3SigV4Auth(Credentials(key_id, secret), "s3", "us-east-1")
    # The client's clock, an hour off: botocore signs with the time it reads.
    with mock.patch("botocore.auth.get_current_datetime", lambda: when):
        signer.add_auth(request)
    return urllib.request.Request(request.url, headers=dict(request.headers.items()))


def test_skewed_clock_and_expired_presigned_url(accounts_node):
    _, _, key_id, secret = _account(accounts_node)
    skewed = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    with pytest.raises(urllib.error.HTTPError) as too_old:
        urllib.request.urlopen(_signed_at(accounts_node, key_id, secret, skewed), timeout=5)
    assert too_old.value.code == 403
    assert b"<Code>RequestTimeTooSkewed</Code>" in too_old.value.read()
    client = accounts_node.client(key_id, secret, signature_version="s3v4")
    name = "p-" + secrets.token_hex(4)
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="k", Body=b"v")
    url = client.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k"},
                                        ExpiresIn=1)
    with urllib.request.urlopen(url, timeout=5) as fresh:
        assert fresh.read() == b"v"
    import time

    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as expired:
        urllib.request.urlopen(url, timeout=5)
    assert expired.value.code == 403
    body = expired.value.read()
    assert b"<Code>AccessDenied</Code>" in body and b"expired" in body
    tampered = url.replace("/k?", "/other?")
    with pytest.raises(urllib.error.HTTPError) as forged:
        urllib.request.urlopen(tampered, timeout=5)
    assert forged.value.code in (403,)


def test_single_user_mode_has_no_keys(s3_node):
    with pytest.raises(urllib.error.HTTPError) as refused:
        s3_node.rest("POST", "/api/v1/auth/keys", {})
    assert refused.value.code == 400


def test_cli_keys_create_list_revoke(accounts_node):
    import json
    import os
    import subprocess
    import sys

    token, _, _, _ = _account(accounts_node)
    env = {**os.environ, "ECHOFS_URL": accounts_node.process.url, "ECHOFS_TOKEN": token}

    def echofs(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "echofs", "keys", *args], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    created = json.loads(echofs("create", "--json"))
    client = accounts_node.client(created["access_key_id"], created["secret_access_key"])
    client.list_buckets()
    assert created["access_key_id"] in echofs("list")
    assert "revoked" in echofs("revoke", created["access_key_id"])
    with pytest.raises(ClientError) as revoked:
        client.list_buckets()
    assert _code(revoked) == "InvalidAccessKeyId"


def test_signature_version_2_is_verified_too(accounts_node):
    _, _, key_id, secret = _account(accounts_node)
    legacy = accounts_node.client(key_id, secret, signature_version="s3")
    name = "v2-" + secrets.token_hex(4)
    legacy.create_bucket(Bucket=name)
    legacy.put_object(Bucket=name, Key="dir/old style.txt", Body=b"v2", ContentType="text/x")
    assert legacy.get_object(Bucket=name, Key="dir/old style.txt")["Body"].read() == b"v2"
    url = legacy.generate_presigned_url("get_object", Params={"Bucket": name,
                                                             "Key": "dir/old style.txt"})
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.read() == b"v2"
    with pytest.raises(ClientError) as wrong:
        accounts_node.client(key_id, "x" + secret[1:], signature_version="s3").list_buckets()
    assert _code(wrong) == "SignatureDoesNotMatch"
