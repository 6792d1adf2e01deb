"""Upload sessions on a process cluster of two masters sharing DynamoDB
(moto in server mode): an S3 multipart upload and a resumable upload are
each created through one master, take parts through both, are completed
once (a retried complete, through the other master, answers the same
version) and read through either."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Iterator

import aiohttp
import blake3
import boto3
import pytest
from botocore.config import Config

from echofs.client.aio import AsyncClient
from echofs.metadata.dynamodb.connection import Target
from echofs.testing import services
from echofs.testing.cluster import ProcessCluster
from echofs.testing.s3 import OPEN_KEY, OPEN_SECRET

MIB = 1024 * 1024


def _client(port: int):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id=OPEN_KEY, aws_secret_access_key=OPEN_SECRET,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


@pytest.fixture
def cluster(tmp_path, moto_server, redis_url) -> Iterator[ProcessCluster]:  # type: ignore[no-untyped-def]
    url = (f"dynamodb://?endpoint={moto_server.endpoint_url}&region=us-east-1"
           f"&prefix=mp{uuid.uuid4().hex[:8]}-")
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "UPLOAD_PART_SIZE": str(MIB),
           "REDIS_PREFIX": f"echofs-s3mpd-{uuid.uuid4().hex[:8]}", **services.S3_TEST_ENV}
    with ProcessCluster(tmp_path / "cluster", masters=2, env=env) as running:
        for master in range(2):
            running.wait_for_workers(3, master=master)
        running.sessions_table = Target.from_url(url).tables["sessions"]  # type: ignore[attr-defined]
        running.dynamodb_endpoint = moto_server.endpoint_url  # type: ignore[attr-defined]
        yield running


def test_one_upload_through_two_masters_on_dynamodb(cluster):
    first, second = (_client(port) for port in cluster.s3_ports)
    first.create_bucket(Bucket="multi")
    upload_id = first.create_multipart_upload(Bucket="multi", Key="joined.bin",
                                              Metadata={"by": "two"})["UploadId"]
    other = second.create_multipart_upload(Bucket="multi", Key="aborted.bin")["UploadId"]
    bodies = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(MIB + 7)]
    etags = []
    for number, body in enumerate(bodies, 1):
        via = first if number % 2 else second
        etags.append(via.upload_part(Bucket="multi", Key="joined.bin", UploadId=upload_id,
                                     PartNumber=number, Body=body)["ETag"])
    listed = second.list_multipart_uploads(Bucket="multi")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [("aborted.bin", other),
                                                           ("joined.bin", upload_id)]
    first.abort_multipart_upload(Bucket="multi", Key="aborted.bin", UploadId=other)
    assert [p["ETag"] for p in first.list_parts(Bucket="multi", Key="joined.bin",
                                                UploadId=upload_id)["Parts"]] == etags
    parts = {"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]}
    done = second.complete_multipart_upload(Bucket="multi", Key="joined.bin",
                                            UploadId=upload_id, MultipartUpload=parts)
    digests = b"".join(hashlib.md5(b).digest() for b in bodies)
    assert done["ETag"] == f'"{hashlib.md5(digests).hexdigest()}-3"'
    got = first.get_object(Bucket="multi", Key="joined.bin")
    assert got["Body"].read() == b"".join(bodies)
    assert got["ETag"] == done["ETag"] and got["Metadata"] == {"by": "two"}
    # A retried complete, through the other master, answers the same object.
    again = first.complete_multipart_upload(Bucket="multi", Key="joined.bin",
                                            UploadId=upload_id, MultipartUpload=parts)
    assert again["ETag"] == done["ETag"]
    assert second.list_multipart_uploads(Bucket="multi").get("Uploads", []) == []
    # The masters kept it in DynamoDB: the completed session's item names its version.
    tables = boto3.client("dynamodb", endpoint_url=cluster.dynamodb_endpoint,
                          region_name="us-east-1",
                          aws_access_key_id=services.S3_TEST_ENV["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=services.S3_TEST_ENV["AWS_SECRET_ACCESS_KEY"])
    item = tables.get_item(TableName=cluster.sessions_table,
                           Key={"pk": {"S": f"S#{upload_id}"}, "sk": {"S": "SESSION"}})["Item"]
    assert (item["state"]["S"], item["version"]["N"]) == ("completed", "1")


async def test_one_resumable_upload_through_two_masters_on_dynamodb(cluster):
    data = os.urandom(6 * MIB + 777)
    parts = [data[i:i + MIB] for i in range(0, len(data), MIB)]
    first, second = cluster.urls
    async with AsyncClient(first) as a, AsyncClient(second) as b:
        session = await a.upload_init("shared/file.bin", len(data))
        sid = session["session_id"]
        # Odd parts through one master, even through the other, all at once.
        await asyncio.gather(*(
            (a if n % 2 else b).upload_part(sid, n, p, blake3=blake3.blake3(p).hexdigest())
            for n, p in enumerate(parts)))
        assert (await a.upload_status(sid))["received"] == list(range(len(parts)))
        done, again = await asyncio.gather(
            b.upload_complete(sid, blake3=blake3.blake3(data).hexdigest()),
            a.upload_complete(sid))
        assert (again.file_id, again.version) == (done.file_id, done.version)
    for url in (first, second):
        async with aiohttp.ClientSession() as http, \
                http.get(f"{url}/api/v1/files/content/shared/file.bin") as resp:
            assert resp.status == 200 and await resp.read() == data
