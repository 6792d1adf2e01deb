"""S3 across a process cluster: two masters on one PostgreSQL store (and a
shared Redis cache), three worker processes. A bucket made through one
master is the other's too; objects written through either are read through
both, replicated like any file; the masters' health lists their S3 ports."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from echofs.testing.cluster import ProcessCluster
from echofs.testing.s3 import OPEN_KEY, OPEN_SECRET


def _client(port: int):
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id=OPEN_KEY, aws_secret_access_key=OPEN_SECRET,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


@pytest.fixture
def cluster(tmp_path, postgres_url, redis_url):
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url,
           "REDIS_PREFIX": f"echofs-s3-{uuid.uuid4().hex[:8]}"}
    with ProcessCluster(tmp_path / "cluster", masters=2, env=env) as running:
        for master in range(2):
            running.wait_for_workers(3, master=master)
        yield running


def test_two_masters_one_namespace(cluster):
    first, second = (_client(port) for port in cluster.s3_ports)
    for index, master in enumerate(cluster.masters):
        with urllib.request.urlopen(f"{master.url}/api/v1/health") as answer:
            health = json.loads(answer.read())
        assert health["s3"] == {"enabled": True, "port": cluster.s3_ports[index]}
    first.create_bucket(Bucket="shared")
    second.head_bucket(Bucket="shared")
    with pytest.raises(ClientError) as taken:
        second.create_bucket(Bucket="shared")
    assert taken.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    body = os.urandom(3 * 1024 * 1024 + 5)
    etag = first.put_object(Bucket="shared", Key="big.bin", Body=body)["ETag"]
    assert etag == f'"{hashlib.md5(body).hexdigest()}"'
    got = second.get_object(Bucket="shared", Key="big.bin")
    assert got["Body"].read() == body and got["ETag"] == etag
    second.put_object(Bucket="shared", Key="big.bin", Body=b"replaced")
    assert first.get_object(Bucket="shared", Key="big.bin")["Body"].read() == b"replaced"
    second.copy_object(Bucket="shared", Key="copy.bin", CopySource="shared/big.bin")
    assert [o["Key"] for o in first.list_objects_v2(Bucket="shared")["Contents"]] == \
        ["big.bin", "copy.bin"]
    first.delete_objects(Bucket="shared", Delete={"Objects": [{"Key": "big.bin"},
                                                              {"Key": "copy.bin"}]})
    with pytest.raises(ClientError) as gone:
        second.get_object(Bucket="shared", Key="copy.bin")
    assert gone.value.response["Error"]["Code"] == "NoSuchKey"
    second.delete_bucket(Bucket="shared")
    assert [b["Name"] for b in first.list_buckets()["Buckets"]] == []
