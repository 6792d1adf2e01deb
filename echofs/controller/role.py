"""The controller role: its service (decisions), gRPC (masters' signals and
mode watches) and REST API (operators)."""

from __future__ import annotations

import importlib
import json
import logging

from aiohttp import web
from grpclib.server import Server

from echofs.config import Settings
from echofs.controller.http_api import ControllerAPI
from echofs.controller.service import ControllerService
from echofs.core.consistency import (
    HysteresisConfig,
    ModeDecider,
    Policy,
    PolicyConfig,
    parse_mode,
)
from echofs.metadata.consistency import ConsistencyRepository
from echofs.metadata.repository import MetadataRepository
from echofs.observability.grpc import instrument_server
from echofs.observability.http import metrics_middleware, metrics_routes
from echofs.rpc.cluster_auth import require_cluster_token
from echofs.rpc.controller import ControllerGrpcService
from echofs.serving.middleware import error_middleware

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
    return ControllerService(ConsistencyRepository(repo), decider,
                             sample_interval=settings.sample_interval,
                             replication_factor=settings.replication_factor)


class ControllerRole:
    """A controller with its own network faces (role ``controller``)."""

    def __init__(self, settings: Settings, service: ControllerService) -> None:
        self.settings = settings
        self.service = service
        self._grpc: Server | None = None
        self._http: web.AppRunner | None = None

    async def start(self) -> None:
        s = self.settings
        grpc_server = require_cluster_token(
            instrument_server(Server([ControllerGrpcService(self.service)])), s.cluster_token)
        await grpc_server.start(s.host, s.controller_grpc_port)
        self._grpc = grpc_server
        app = web.Application(middlewares=[error_middleware, metrics_middleware])
        app.add_routes(ControllerAPI(self.service).routes("/v1", ""))
        app.add_routes(metrics_routes())
        self._http = web.AppRunner(app, access_log=None)
        await self._http.setup()
        await web.TCPSite(self._http, s.host, s.controller_http_port, reuse_address=True).start()
        log.info("controller serving gRPC %s:%d and HTTP %s:%d (sample every %.1fs)",
                 s.host, s.controller_grpc_port, s.host, s.controller_http_port,
                 s.sample_interval)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.cleanup()
        if self._grpc is not None:
            self._grpc.close()
            await self._grpc.wait_closed()
