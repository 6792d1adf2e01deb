"""The deployment files agree with the code and with each other.

No Docker engine runs in CI, so ``docker-compose.yml`` is validated, not run:
it parses; every EchoFS service runs a command the ``echofs`` CLI accepts
with settings that validate and a bind address EchoFS agrees to serve; it
sets only settings EchoFS knows; its ports are the ones ``config/prometheus.yml``
scrapes; Grafana's provisioning points at the shipped dashboard and
datasource. The Dockerfile builds a non-root image with a health check.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from echofs.cli import build_parser
from echofs.config import ROLES, Settings
from echofs.node import check_bind_address

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PROMETHEUS = yaml.safe_load((ROOT / "config" / "prometheus.yml").read_text())
GRAFANA = ROOT / "config" / "grafana"

SETTINGS_ENV = {f.metadata["env"] for f in fields(Settings) if "env" in f.metadata}
# Read by libraries EchoFS uses (boto's credentials).
LIBRARY_ENV_PREFIXES = ("AWS_",)

ECHOFS = sorted(name for name, svc in SERVICES.items()
                if "build" in svc or str(svc.get("image", "")).startswith("echofs"))
SERVE = [name for name in ECHOFS if SERVICES[name]["command"][1] == "serve"]


def flag(command: list[str], name: str) -> str | None:
    for i, arg in enumerate(command):
        if arg == name:
            return command[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` / ``${VAR:?error}`` with nothing set."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}",
                  lambda m: m.group(2) if m.group(2) is not None else "x" * 32, value)


def test_the_whole_cluster_is_there():
    assert {"postgres", "redis", "s3", "master", "worker1", "worker2", "worker3",
            "controller", "prometheus", "grafana"} <= set(SERVICES)
    assert {"master", "worker1", "worker2", "worker3", "controller", "migrate"} <= set(ECHOFS)
    for name, svc in SERVICES.items():
        assert "image" in svc or "build" in svc, name
        for dep in svc.get("depends_on", []):
            assert dep in SERVICES, (name, dep)
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in COMPOSE["volumes"], (name, source)


@pytest.mark.parametrize("service", ECHOFS)
def test_every_echofs_command_is_accepted_by_the_cli(service):
    command = SERVICES[service]["command"]
    assert command[0] == "echofs", command
    try:
        args = build_parser().parse_args(command[1:])
    except SystemExit as exc:
        pytest.fail(f"{service}: `{' '.join(command)}` rejected by the CLI ({exc.code})")
    if args.command != "serve":
        return
    env = {k: interpolate(str(v)) for k, v in SERVICES[service]["environment"].items()
           if k in SETTINGS_ENV}
    flags = {k: v for k, v in vars(args).items()
             if k in Settings.__dataclass_fields__ and v is not None}
    assert {r.strip() for r in args.role.split(",")} <= ROLES
    settings = Settings.load(env=env, overrides=flags)
    assert settings.host == "0.0.0.0"  # containers reach each other by name
    assert settings.log_format == "json"
    check_bind_address(settings)  # accounts on: EchoFS agrees to serve 0.0.0.0


@pytest.mark.parametrize("service", ECHOFS)
def test_echofs_services_set_only_settings_echofs_knows(service):
    names = set(SERVICES[service].get("environment", {}))
    unknown = {n for n in names - SETTINGS_ENV
               if not n.startswith(LIBRARY_ENV_PREFIXES)}
    assert unknown == set(), f"{service} sets settings EchoFS does not read"


# The flag that sets each role's HTTP port (where /health and /metrics live).
HTTP_PORT_FLAG = {"master": "--port", "worker": "--http-port", "controller": "--controller-port"}


def http_port(service: str) -> int:
    command = SERVICES[service]["command"]
    role = flag(command, "--role")
    assert role in HTTP_PORT_FLAG, (service, role)
    value = flag(command, HTTP_PORT_FLAG[role])
    assert value is not None, (service, command)
    return int(value)


def test_prometheus_scrapes_each_role_where_compose_serves_it():
    jobs = {job["job_name"]: sorted(t for c in job["static_configs"] for t in c["targets"])
            for job in PROMETHEUS["scrape_configs"]}
    for job in PROMETHEUS["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
    by_role: dict[str, list[str]] = {}
    for service in SERVE:
        role = flag(SERVICES[service]["command"], "--role")
        assert role is not None
        by_role.setdefault(role, []).append(f"{service}:{http_port(service)}")
    assert jobs == {"echofs-master": sorted(by_role["master"]),
                    "echofs-controller": sorted(by_role["controller"]),
                    "echofs-workers": sorted(by_role["worker"])}


def test_workers_join_the_master_and_advertise_their_own_name():
    master = SERVICES["master"]["command"]
    master_grpc = f"master:{flag(master, '--grpc-port')}"
    workers = [s for s in SERVE if flag(SERVICES[s]["command"], "--role") == "worker"]
    assert len(workers) == 3
    ids, grpc_ports = set(), set()
    for service in workers:
        command = SERVICES[service]["command"]
        assert flag(command, "--master") == master_grpc
        assert flag(command, "--advertise-host") == service
        ids.add(flag(command, "--id"))
        grpc_ports.add(flag(command, "--grpc-port"))
        # Its health check asks its own HTTP port.
        check = " ".join(SERVICES[service]["healthcheck"]["test"])
        assert f"127.0.0.1:{http_port(service)}/health" in check
    assert len(ids) == len(grpc_ports) == 3


def test_the_master_reports_to_the_controller_where_it_listens():
    controller = SERVICES["controller"]["command"]
    grpc = flag(controller, "--controller-grpc-port")
    assert flag(SERVICES["master"]["command"], "--controller") == f"controller:{grpc}"
    check = " ".join(SERVICES["controller"]["healthcheck"]["test"])
    assert f"127.0.0.1:{http_port('controller')}/health" in check


def test_grafana_is_provisioned_with_the_shipped_dashboard_and_datasource():
    grafana = SERVICES["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"])
    assert mounts["./config/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "echofs.yml").read_text())["providers"][0]
    assert mounts["./config/grafana/dashboards"] == provider["options"]["path"]
    source = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "9090:9090" in SERVICES["prometheus"]["ports"]
    mounted = {v.split(":")[0]: v.split(":")[1] for v in SERVICES["prometheus"]["volumes"]}
    assert mounted["./config/prometheus.yml"] in " ".join(SERVICES["prometheus"]["command"])

    dashboard = json.loads((GRAFANA / "dashboards" / "echofs.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_the_image_runs_as_a_non_root_user_with_a_health_check_and_json_logs():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK\b", dockerfile, re.MULTILINE)
    assert re.search(r"^ENV\b.*\bLOG_FORMAT=json\b", dockerfile, re.MULTILINE)
    # Locally (no container) the default stays the readable console format.
    assert Settings.load(env={}).log_format == "console"
