"""Multipart uploads as the real clients make them, against the embedded node:
boto3's managed transfer with its default checksums and aws-cli's ``s3 cp``
(multipart above 8 MiB), 200 MiB each way with exact bytes and flat server
memory; and the parts of aborted and expired uploads collected from disk."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import blake3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from echofs.testing import disk
from echofs.testing.s3 import OPEN_KEY, OPEN_SECRET, start_s3_node

MIB = 1024 * 1024
BIG = 200 * MIB
# The server may grow by this much while 200 MiB go through it (buffers,
# caches, allocator slack): far less than the file.
MEMORY_SLACK = 120 * MIB


def _big_file(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("wb") as out:
        for _ in range(BIG // MIB):
            block = os.urandom(MIB)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def _md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as source:
        while block := source.read(MIB):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.slow
def test_boto3_upload_file_200_mib_multipart_default_checksums(s3, s3_node, bucket, tmp_path):
    source = tmp_path / "big.bin"
    digest = _big_file(source)
    config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB,
                            max_concurrency=4)
    rss_before = s3_node.process.rss()
    s3.upload_file(str(source), bucket, "big.bin", Config=config)
    grown = s3_node.process.rss() - rss_before
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == BIG
    assert head["ETag"].endswith(f'-{BIG // (8 * MIB)}"')
    back = tmp_path / "back.bin"
    s3.download_file(bucket, "big.bin", str(back), Config=config)
    assert _md5_of(back) == digest
    assert grown < MEMORY_SLACK, f"the server grew by {grown / MIB:.0f} MiB"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def _aws(endpoint: str, tmp_path: Path):
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = us-east-1\n")  # aws-cli's defaults: 8 MiB parts
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": OPEN_KEY, "AWS_SECRET_ACCESS_KEY": OPEN_SECRET,
                "AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_DEFAULT_REGION": "us-east-1"})
    binary = str(Path(sys.executable).parent / "aws")

    def run(*args: str) -> str:
        done = subprocess.run([binary, "--endpoint-url", endpoint, *args], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"aws failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    return run


@pytest.mark.slow
def test_aws_cp_200_mib_up_and_down_multipart(s3, s3_node, bucket, tmp_path):
    aws = _aws(s3_node.endpoint, tmp_path)
    source = tmp_path / "big.bin"
    digest = _big_file(source)
    rss_before = s3_node.process.rss()
    aws("s3", "cp", str(source), f"s3://{bucket}/cli/big.bin")
    grown = s3_node.process.rss() - rss_before
    # aws-cli sent it in parts: the ETag says how many.
    assert s3.head_object(Bucket=bucket, Key="cli/big.bin")["ETag"].endswith(
        f'-{BIG // (8 * MIB)}"')
    back = tmp_path / "back.bin"
    aws("s3", "cp", f"s3://{bucket}/cli/big.bin", str(back))
    assert _md5_of(back) == digest
    assert grown < MEMORY_SLACK, f"the server grew by {grown / MIB:.0f} MiB"


def _chunk_ids(data: bytes) -> set[str]:
    return {blake3.blake3(data[i:i + MIB]).hexdigest() for i in range(0, len(data), MIB)}


def test_aborted_and_expired_uploads_parts_are_collected(tmp_path):
    """An aborted upload's parts, and an expired one's, leave the workers'
    disks; an open upload's part stays."""
    env = {"UPLOAD_SESSION_TTL_SECONDS": "8", "UPLOAD_SESSION_SWEEP_SECONDS": "0.2",
           "GC_INTERVAL_SECONDS": "0.5", "GC_GRACE_SECONDS": "1",
           "GC_PRESSURE_GRACE_SECONDS": "1"}
    node = start_s3_node(tmp_path / "node", env=env)
    try:
        s3 = node.client()
        s3.create_bucket(Bucket="collected")

        def on_disk() -> set[str]:
            return {chunk_id for worker in ("w1", "w2", "w3")
                    for chunk_id in disk.stored_copies(
                        tmp_path / "node" / "data" / "workers" / worker)}

        def upload(key: str, body: bytes) -> str:
            upload_id = s3.create_multipart_upload(Bucket="collected", Key=key)["UploadId"]
            s3.upload_part(Bucket="collected", Key=key, UploadId=upload_id, PartNumber=1, Body=body)
            return upload_id

        aborted, expiring, kept = (os.urandom(2 * MIB) for _ in range(3))
        aborted_id = upload("aborted.bin", aborted)
        expiring_id = upload("expiring.bin", expiring)
        assert _chunk_ids(aborted) | _chunk_ids(expiring) <= on_disk()
        s3.abort_multipart_upload(Bucket="collected", Key="aborted.bin", UploadId=aborted_id)
        _wait_until(lambda: not _chunk_ids(aborted) & on_disk(), 15,
                    "the aborted upload's chunks are still stored")
        # The expiring upload runs out 8 s after its creation; one made now
        # outlives it.
        kept_id = upload("kept.bin", kept)
        _wait_until(lambda: not _chunk_ids(expiring) & on_disk(), 20,
                    "the expired upload's chunks are still stored")
        assert _chunk_ids(kept) <= on_disk()
        with pytest.raises(ClientError) as gone:
            s3.list_parts(Bucket="collected", Key="expiring.bin", UploadId=expiring_id)
        assert gone.value.response["Error"]["Code"] == "NoSuchUpload"
        listed = s3.list_multipart_uploads(Bucket="collected")["Uploads"]
        assert [(u["Key"], u["UploadId"]) for u in listed] == [("kept.bin", kept_id)]
    finally:
        node.process.terminate()


def _wait_until(condition, seconds: float, message: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)
