"""The controller role: its service (decisions), gRPC (masters' signals and
mode watches) and REST API (operators)."""

from __future__ import annotations

import importlib
import json
import logging
from contextlib import AsyncExitStack

from echofs.config import Settings
from echofs.controller.http_api import ControllerAPI
from echofs.controller.roster import WorkerRoster
from echofs.controller.service import ControllerService
from echofs.core.consistency import (
    HysteresisConfig,
    ModeDecider,
    Policy,
    PolicyConfig,
    parse_mode,
)
from echofs.metadata.repository import MetadataRepository
from echofs.rpc.controller import ControllerGrpcService
from echofs.serving.endpoints import role_app, role_grpc_server, serving
from echofs.serving.http_protocol import HttpLimits
from echofs.serving.lifecycle import Lifecycle

log = logging.getLogger(__name__)


def build_policy(settings: Settings) -> Policy:
    """The configured policy class with the configured weights/thresholds."""
    module_name, _, class_name = settings.policy_class.partition(":")
    try:
        policy_type = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"POLICY_CLASS {settings.policy_class!r} not found: {exc}") from None
    overrides = json.loads(settings.policy_config) if settings.policy_config else {}
    if not isinstance(overrides, dict):
        raise ValueError("POLICY_CONFIG must be a JSON object")
    try:
        config = PolicyConfig(**overrides)
    except TypeError as exc:
        raise ValueError(f"POLICY_CONFIG: {exc}") from None
    policy = policy_type(config)
    if not isinstance(policy, Policy):
        raise ValueError(f"POLICY_CLASS {settings.policy_class!r} is not a Policy")
    return policy


def build_controller(settings: Settings, repo: MetadataRepository) -> ControllerService:
    decider = ModeDecider(
        build_policy(settings),
        HysteresisConfig(confirm_samples=settings.confirm_samples,
                         cooldown=settings.mode_cooldown,
                         emergency_risk=settings.emergency_risk),
        default_mode=parse_mode(settings.default_mode),
    )
    return ControllerService(repo.consistency, decider,
                             sample_interval=settings.sample_interval,
                             replication_factor=settings.replication_factor)


class ControllerRole(Lifecycle):
    """A controller with its own network faces (role ``controller``)."""

    def __init__(self, settings: Settings, service: ControllerService) -> None:
        self.settings = settings
        self.service = service

    async def _start(self, stack: AsyncExitStack) -> None:
        s = self.settings
        api = ControllerAPI(self.service, cluster_token=s.cluster_token, roster=WorkerRoster(
            suspect_after=s.suspect_after, dead_after=s.dead_after))
        await stack.enter_async_context(serving(
            role_app(api.routes("/v1", "") + api.membership_routes("/v1")),
            host=s.host, http_port=s.controller_http_port,
            grpc=role_grpc_server([ControllerGrpcService(self.service)], s.cluster_token),
            grpc_port=s.controller_grpc_port, limits=HttpLimits.from_settings(s)))
        log.info("controller serving gRPC %s:%d and HTTP %s:%d (sample every %.1fs)",
                 s.host, s.controller_grpc_port, s.host, s.controller_http_port,
                 s.sample_interval)
