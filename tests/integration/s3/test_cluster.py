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


def test_rclone_through_one_master_checks_through_the_other(cluster, tmp_path):
    import shutil
    import subprocess

    binary = shutil.which("rclone")
    assert binary, "rclone is missing: tests/run.sh installs the Debian package"
    source = tmp_path / "tree"
    for name, size in (("a.bin", 10), ("dir/b.bin", 2_000_000), ("dir/sub/c.bin", 0)):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(os.urandom(size))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env["RCLONE_CONFIG"] = os.devnull
    remotes = []
    for index, port in enumerate(cluster.s3_ports):
        name = f"M{index}"
        env.update({f"RCLONE_CONFIG_{name}_TYPE": "s3", f"RCLONE_CONFIG_{name}_PROVIDER": "Other",
                    f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": OPEN_KEY,
                    f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": OPEN_SECRET,
                    f"RCLONE_CONFIG_{name}_ENDPOINT": f"http://127.0.0.1:{port}",
                    f"RCLONE_CONFIG_{name}_REGION": "us-east-1"})
        remotes.append(name.lower())

    def rclone(*args: str) -> None:
        done = subprocess.run([binary, *args], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr

    rclone("mkdir", f"{remotes[0]}:tree")
    rclone("copy", str(source), f"{remotes[0]}:tree")
    rclone("check", str(source), f"{remotes[1]}:tree")  # zero differences


def test_aws_cli_and_s3cmd_across_the_two_masters(cluster, tmp_path):
    """aws-cli's multipart upload (its default above 8 MiB) through one
    master, its download and a sync through the other; s3cmd through both."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = us-east-1\n")
    env.update(AWS_ACCESS_KEY_ID=OPEN_KEY, AWS_SECRET_ACCESS_KEY=OPEN_SECRET,
               AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_DEFAULT_REGION="us-east-1")
    aws_binary = str(Path(sys.executable).parent / "aws")
    endpoints = [f"http://127.0.0.1:{port}" for port in cluster.s3_ports]

    def run(args: list[str]) -> str:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{args[:3]}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def aws(master: int, *args: str) -> str:
        return run([aws_binary, "--endpoint-url", endpoints[master], *args])

    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(40 * 1024 * 1024 + 123))
    aws(0, "s3", "mb", "s3://crossed")
    aws(0, "s3", "cp", str(source), "s3://crossed/big.bin")
    back = tmp_path / "back.bin"
    aws(1, "s3", "cp", "s3://crossed/big.bin", str(back))
    assert back.read_bytes() == source.read_bytes()
    tree = tmp_path / "tree"
    for name in ("a.txt", "dir/b.txt"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(os.urandom(1000))
    assert aws(0, "s3", "sync", str(tree), "s3://crossed/tree").count("upload:") == 2
    assert "upload:" not in aws(1, "s3", "sync", str(tree), "s3://crossed/tree")

    s3cmd = shutil.which("s3cmd")
    assert s3cmd, "s3cmd is missing: tests/run.sh installs the Debian package"
    configs = []
    for index, endpoint in enumerate(endpoints):
        host = endpoint.removeprefix("http://")
        path = tmp_path / f"s3cfg-{index}"
        path.write_text(f"[default]\naccess_key = {OPEN_KEY}\nsecret_key = {OPEN_SECRET}\n"
                        f"host_base = {host}\nhost_bucket = {host}\nuse_https = False\n"
                        "bucket_location = us-east-1\n")
        configs.append(str(path))
    note = tmp_path / "note.txt"
    note.write_bytes(b"s3cmd was here\n" * 100)
    run([s3cmd, "-c", configs[1], "--no-progress", "put", str(note), "s3://crossed/note.txt"])
    assert "s3://crossed/note.txt" in run([s3cmd, "-c", configs[0], "ls", "s3://crossed"])
    got = tmp_path / "got.txt"
    run([s3cmd, "-c", configs[0], "--no-progress", "get", "s3://crossed/note.txt", str(got)])
    assert got.read_bytes() == note.read_bytes()
    run([s3cmd, "-c", configs[0], "del", "s3://crossed/note.txt"])
    assert "note.txt" not in run([s3cmd, "-c", configs[1], "ls", "s3://crossed"])
