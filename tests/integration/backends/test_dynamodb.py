"""The embedded node on DynamoDB (moto in server mode on loopback), as the
README walks through it: a master refuses to start on missing tables and
names them; `echofs db upgrade` creates them (twice is harmless); then files
and S3 objects (one of S3's longest keys among them) go in and come out, and
every request the master sent to DynamoDB is counted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import boto3
import pytest

from echofs.metadata.dynamodb.connection import Target
from echofs.testing.http import put_raw
from echofs.testing.process import ServeProcess, free_port
from echofs.testing.services import MotoServer

from .conftest import dynamodb_url


def echofs_db(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "echofs", "db", *args],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


@pytest.fixture
def dynamo_env(moto_server: MotoServer) -> dict[str, str]:
    return {"DATABASE_URL": dynamodb_url(moto_server), **moto_server.env}


def test_missing_tables_stop_the_master_with_their_names(dynamo_env: dict[str, str],
                                                          tmp_path: Path) -> None:
    node = ServeProcess(tmp_path / "data", env=dynamo_env)
    with pytest.raises(RuntimeError) as refused:
        node.start(timeout=30)
    assert node.proc is not None and node.proc.returncode == 2
    for name in Target.from_url(dynamo_env["DATABASE_URL"], {}).tables.values():
        assert name in str(refused.value)
    assert "echofs db upgrade" in str(refused.value)
    assert "Traceback" not in str(refused.value)


def test_the_originals_variables_name_the_tables(moto_server: MotoServer) -> None:
    prefix = f"legacy{os.getpid()}-"
    env = {**moto_server.env, "DYNAMODB_ENDPOINT_URL": moto_server.endpoint_url,
           "DYNAMODB_FILES_TABLE": f"{prefix}files", "DYNAMODB_CHUNKS_TABLE": f"{prefix}chunks",
           "DYNAMODB_SESSIONS_TABLE": f"{prefix}sessions"}
    done = echofs_db(env, "upgrade")
    assert done.returncode == 0, done.stderr
    client = boto3.client("dynamodb", endpoint_url=moto_server.endpoint_url,
                          region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    names = set(client.list_tables()["TableNames"])
    assert {f"{prefix}files", f"{prefix}chunks", f"{prefix}sessions"} <= names
    table = client.describe_table(TableName=f"{prefix}files")["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


async def test_the_embedded_node_runs_on_dynamodb(dynamo_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    first = echofs_db(dynamo_env, "upgrade")
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    again = echofs_db(dynamo_env, "upgrade")
    assert again.returncode == 0 and "all existed" in again.stdout, again
    s3_port = free_port()
    with ServeProcess(tmp_path / "data", "--s3-port", str(s3_port), env=dynamo_env) as node:
        async with aiohttp.ClientSession(base_url=node.url) as http:
            data = os.urandom(300_000)
            body = await put_raw(http, "docs/report.bin", data)
            assert body["version"] == 1
            second = await put_raw(http, "docs/report.bin", data[::-1])
            assert second["version"] == 2
            async with http.get(f"/api/v1/files/{body['file_id']}/download",
                                params={"version": "1"}) as resp:
                assert resp.status == 200 and await resp.read() == data
            async with http.get("/api/v1/files", params={"prefix": "docs/"}) as resp:
                listed = await resp.json()
            assert [f["path"] for f in listed["files"]] == ["docs/report.bin"]
            async with http.get("/metrics") as resp:
                metrics = await resp.text()
            assert 'echofs_dynamodb_requests_total{operation="transact_write_items"}' in metrics
            async with http.delete(f"/api/v1/files/{body['file_id']}") as resp:
                assert resp.status in (200, 204), await resp.text()
            async with http.get(f"/api/v1/files/{body['file_id']}") as resp:
                assert resp.status == 404
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}",
                          region_name="us-east-1", aws_access_key_id="any",
                          aws_secret_access_key="any-secret")
        s3.create_bucket(Bucket="photos")
        s3.put_object(Bucket="photos", Key="cat.jpg", Body=b"meow" * 1000,
                      ContentType="image/jpeg")
        got = s3.get_object(Bucket="photos", Key="cat.jpg")
        assert got["Body"].read() == b"meow" * 1000 and got["ContentType"] == "image/jpeg"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="photos")["Contents"]] == ["cat.jpg"]
        # S3's longest key: its name is longer than a DynamoDB sort key holds.
        long_key = "long/" + "k" * 1019
        s3.put_object(Bucket="photos", Key=long_key, Body=b"far")
        assert s3.get_object(Bucket="photos", Key=long_key)["Body"].read() == b"far"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="photos")["Contents"]] == [
            "cat.jpg", long_key]
        assert [o["Key"] for o in s3.list_objects_v2(
            Bucket="photos", Prefix="long/" + "k" * 1000)["Contents"]] == [long_key]
        started = s3.create_multipart_upload(Bucket="photos", Key=long_key)
        assert [u["Key"] for u in s3.list_multipart_uploads(Bucket="photos")["Uploads"]] == [
            long_key]
        s3.abort_multipart_upload(Bucket="photos", Key=long_key,
                                  UploadId=started["UploadId"])
        s3.delete_object(Bucket="photos", Key=long_key)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="photos")["Contents"]] == ["cat.jpg"]
