"""Settings: sources, conversions, validation, and the shipped example."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from echofs.auth.jwt_secret import MIN_SECRET_BYTES, check_secret
from echofs.config import Settings, parse_size
from echofs.core.vocabulary import Role

ROOT = Path(__file__).resolve().parents[2]


def test_environment_then_flags():
    env = {"MASTER_PORT": "9000", "CHUNK_SIZE": "2MiB", "REPLICATION_FACTOR": "2",
           "DATABASE_URL": "sqlite:///x.db"}
    settings = Settings.load(env, overrides={"port": 9100, "workers": None})
    assert settings.port == 9100  # flag beats env
    assert settings.chunk_size == 2 * 1024 * 1024
    assert settings.replication_factor == 2
    assert settings.workers == 3  # None flag = not given
    assert settings.metadata_url == "sqlite:///x.db"


@pytest.mark.parametrize(("text", "value"), [("1048576", 1 << 20), ("1MB", 1 << 20),
                                             ("1MiB", 1 << 20), ("64k", 65536),
                                             ("2g", 2 << 30)])
def test_sizes(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("overrides", [{"chunk_size": 100}, {"replication_factor": 4},
                                       {"workers": 0}, {"versions_kept": 0},
                                       {"chain_hop_timeout": 0}])
def test_invalid_settings_are_refused(overrides):
    with pytest.raises(ValueError):
        Settings.load({}, overrides=overrides)


def test_loopback_detection():
    assert Settings(host="127.0.0.1").binds_loopback
    assert Settings(host="::1").binds_loopback
    assert Settings(host="localhost").binds_loopback
    assert not Settings(host="0.0.0.0").binds_loopback
    assert not Settings(host="example.org").binds_loopback


def test_example_env_lists_every_setting_with_its_default():
    text = (ROOT / "config" / "echofs.example.env").read_text()
    env = dict(m.groups() for m in re.finditer(r"^([A-Z0-9_]+)=(.*)$", text, re.MULTILINE))
    names = {f.metadata["env"] for f in Settings.__dataclass_fields__.values()}
    documented = env.keys() | set(re.findall(r"^# ([A-Z0-9_]+)=", text, re.MULTILINE))
    assert names <= documented
    assert Settings.load(env) == Settings()


def test_pyproject_lists_every_package():
    packages = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "echofs").rglob("__init__.py")}
    assert on_disk <= packages, on_disk - packages


def test_redis_from_url_or_the_seeds_address():
    assert Settings.load({}).cache_url is None
    assert Settings.load({"REDIS_ADDR": "cache:6379"}).cache_url == "redis://cache:6379/0"
    both = {"REDIS_ADDR": "cache:6379", "REDIS_URL": "redis://other:6380/2"}
    assert Settings.load(both).cache_url == "redis://other:6380/2"


def test_a_worker_may_report_to_several_masters():
    settings = Settings.load({"MASTER_ADDRESS": "10.0.0.1:9080, 10.0.0.2:9080"})
    assert settings.master_addresses == ["10.0.0.1:9080", "10.0.0.2:9080"]


@pytest.mark.parametrize(("role", "predicates"), [
    ("all", {"embedded", "runs_master", "runs_controller", "opens_metadata"}),
    ("master", {"runs_master", "opens_metadata"}),
    ("controller", {"runs_controller", "serves_controller", "opens_metadata"}),
    ("master,controller", {"runs_master", "runs_controller", "serves_controller",
                           "opens_metadata"}),
    ("worker", {"serves_worker"}),
])
def test_roles_answer_what_the_process_runs(role, predicates):
    settings = Settings.load({}, overrides={"role": role, "worker_id": "w1"})
    names = ("embedded", "runs_master", "runs_controller", "serves_controller",
             "serves_worker", "opens_metadata")
    assert {name for name in names if getattr(settings, name)} == predicates
    assert settings.roles == {Role(r) for r in role.split(",")}


@pytest.mark.parametrize("role", ["", "bogus", "master,bogus", "all,worker"])
def test_unknown_or_mixed_roles_are_refused(role):
    with pytest.raises(ValueError):
        Settings.load({}, overrides={"role": role, "worker_id": "w1"})


def test_one_rule_for_the_jwt_secret():
    check_secret("x" * MIN_SECRET_BYTES)
    check_secret("é" * (MIN_SECRET_BYTES // 2))  # bytes, not characters
    with pytest.raises(ValueError, match=f"at least {MIN_SECRET_BYTES} bytes"):
        check_secret("x" * (MIN_SECRET_BYTES - 1))
    with pytest.raises(ValueError, match=f"at least {MIN_SECRET_BYTES} bytes"):
        Settings.load({"JWT_SECRET": "x" * (MIN_SECRET_BYTES - 1)})
    assert Settings.load({"JWT_SECRET": "x" * MIN_SECRET_BYTES}).jwt_secret


def test_s3_port_default_off_and_free():
    assert Settings().s3_listen_port == 9000 and not Settings().s3_port_required
    assert Settings(port=0).s3_listen_port == 0  # tests: any free port
    assert Settings(s3_port="off").s3_listen_port is None
    assert Settings(s3_port="9100").s3_listen_port == 9100 and Settings(s3_port="9100")\
        .s3_port_required
    for bad in ("nine", "70000", "-1"):
        with pytest.raises(ValueError):
            Settings.load({}, overrides={"s3_port": bad})
    with pytest.raises(ValueError):
        Settings.load({}, overrides={"s3_tls_cert": "/x.pem"})
