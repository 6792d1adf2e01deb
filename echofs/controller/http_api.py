"""The controller's REST API.

Served by the controller role at ``/v1/...`` (+ ``/status``, ``/health``) and,
for operators, by the master under ``/api/v1/consistency/...`` — mounted
directly when the controller runs in the same process, proxied otherwise.
"""

from __future__ import annotations

import hmac
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from echofs.controller.roster import WorkerRoster
from echofs.controller.service import ControllerService, ModeInfo
from echofs.core.consistency import parse_hint, parse_mode
from echofs.core.errors import BadRequest, Unauthorized, Unavailable
from echofs.core.vocabulary import Role
from echofs.serving.json_body import read_json

_MAX_ID = 64
_MAX_KEYS = 1000

# What the API takes; the store answers any such bound (no id lies beyond it).
_MAX_ROW_ID = 2**63 - 1


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _object_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_ID or any(
            ord(c) < 33 for c in value):
        raise BadRequest(f"object_id must be 1..{_MAX_ID} printable characters without spaces",
                         code="invalid_object_id")
    return value


async def _json_body(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object", code="invalid_json")
    return body


def _mode_json(info: ModeInfo) -> dict[str, Any]:
    return {"object_id": info.object_id, "mode": info.mode, "reason": info.reason,
            "score": info.score, "changed_at": _iso(info.changed_at)}


def _keys(body: dict[str, Any], request: web.Request) -> list[str]:
    raw = body.get("keys", [body["object_id"]] if "object_id" in body else None)
    if raw is None and "object_id" in request.query:
        raw = [request.query["object_id"]]
    if not isinstance(raw, list) or not raw or len(raw) > _MAX_KEYS:
        raise BadRequest(f"give 'keys' (a list of 1..{_MAX_KEYS} object ids) or 'object_id'",
                         code="invalid_keys")
    return [_object_id(k) for k in raw]


def _worker_address(value: Any, name: str, *, required: bool) -> str | None:
    """A ``host:port`` (what a master or a peer dials)."""
    if value is None and not required:
        return None
    host, _, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or len(value) > 255 \
            or any(ord(c) <= 32 for c in value):
        raise BadRequest(f"{name} must be host:port", code="invalid_address")
    return str(value)


def _cluster_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("X-EchoFS-Cluster-Token", "")


class ControllerAPI:
    def __init__(self, service: ControllerService, *, cluster_token: str | None = None,
                 roster: WorkerRoster | None = None) -> None:
        self.service = service
        # Workers' own registrations (POST /v1/register), the original's call.
        self.cluster_token = cluster_token
        self.roster = roster or WorkerRoster(suspect_after=3.0, dead_after=30.0)

    def routes(self, prefix: str, status_prefix: str) -> list[web.RouteDef]:
        return [
            web.get(f"{prefix}/mode", self.get_mode),
            web.post(f"{prefix}/hint", self.post_hint),
            web.post(f"{prefix}/override", self.post_override),
            web.delete(f"{prefix}/override", self.delete_override),
            web.get(f"{prefix}/critical-keys", self.get_critical),
            web.post(f"{prefix}/critical-keys", self.post_critical),
            web.delete(f"{prefix}/critical-keys", self.delete_critical),
            web.get(f"{prefix}/transitions", self.get_transitions),
            web.get(f"{status_prefix}/status", self.get_status),
            web.get(f"{status_prefix}/health", self.get_health),
        ]

    def membership_routes(self, prefix: str) -> list[web.RouteDef]:
        """Served by the controller role on its own port (where the original's
        workers called it), not under the master's consistency API."""
        return [
            web.post(f"{prefix}/register", self.post_register),
            web.get(f"{prefix}/workers", self.get_workers),
        ]

    def _require_cluster_token(self, request: web.Request) -> None:
        if self.cluster_token and not hmac.compare_digest(
                _cluster_token(request).encode(), self.cluster_token.encode()):
            raise Unauthorized("this controller needs the cluster token: send "
                               "'Authorization: Bearer <CLUSTER_TOKEN>'",
                               code="cluster_token_required")

    async def post_register(self, request: web.Request) -> web.Response:
        """Register a worker, or refresh its entry (call again as a heartbeat)."""
        self._require_cluster_token(request)
        body = await _json_body(request)
        worker_id = body.get("worker_id", body.get("id"))
        if not isinstance(worker_id, str) or not worker_id or len(worker_id) > _MAX_ID \
                or any(ord(c) < 33 for c in worker_id):
            raise BadRequest(f"worker_id must be 1..{_MAX_ID} printable characters without "
                             "spaces", code="invalid_worker_id")
        address = _worker_address(body.get("address", body.get("grpc_address")), "address",
                                  required=True)
        http_address = _worker_address(body.get("http_address"), "http_address",
                                       required=False)
        assert address is not None
        try:
            entry, new = self.roster.register(worker_id, address, http_address)
        except OverflowError as exc:
            raise Unavailable(str(exc), code="roster_full") from None
        return web.json_response({
            "success": True, "message": "Worker registered" if new else "Worker refreshed",
            "worker_id": entry.worker_id, "registered": new,
            "state": self.roster.state(entry), "registrations": entry.registrations,
            # Register again within this many seconds to stay alive.
            "refresh_within_seconds": self.roster.suspect_after,
        }, status=201 if new else 200)

    async def get_workers(self, request: web.Request) -> web.Response:
        """The roster, with the unhealthiness the controller holds for each
        worker from the masters' measurements."""
        self._require_cluster_token(request)
        risk = self.service.status().get("worker_unhealthiness", {})
        assert isinstance(risk, dict)
        now = time.monotonic()
        workers = [{
            "worker_id": e.worker_id, "address": e.address, "http_address": e.http_address,
            "state": self.roster.state(e, now), "registered_at": _iso(e.registered_at),
            "seconds_since_seen": round(now - e.last_seen, 3),
            "registrations": e.registrations, "unhealthiness": risk.get(e.worker_id, 0.0),
        } for e in self.roster.entries()]
        return web.json_response({"workers": workers, "count": len(workers)})

    async def get_mode(self, request: web.Request) -> web.Response:
        object_id = _object_id(request.query.get("object_id"))
        return web.json_response(_mode_json(self.service.mode_of(object_id)))

    async def post_hint(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        object_id = _object_id(body.get("object_id"))
        try:
            hint = parse_hint(str(body.get("hint", "")))
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_hint") from None
        await self.service.set_hint(object_id, hint)
        return web.json_response({"object_id": object_id, "hint": hint.value,
                                  **_mode_json(self.service.mode_of(object_id))})

    async def post_override(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            mode = parse_mode(str(body.get("mode", "")))
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_mode") from None
        await self.service.set_override(mode)
        return web.json_response({"override": mode.value})

    async def delete_override(self, request: web.Request) -> web.Response:
        await self.service.set_override(None)
        return web.json_response({"override": None})

    async def get_critical(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": sorted(self.service.controls.critical)})

    async def post_critical(self, request: web.Request) -> web.Response:
        keys = _keys(await _json_body(request), request)
        await self.service.add_critical(keys)
        return web.json_response({"keys": sorted(self.service.controls.critical)})

    async def delete_critical(self, request: web.Request) -> web.Response:
        body = await _json_body(request) if request.can_read_body else {}
        keys = _keys(body, request)
        await self.service.remove_critical(keys)
        return web.json_response({"keys": sorted(self.service.controls.critical)})

    async def get_transitions(self, request: web.Request) -> web.Response:
        object_id = request.query.get("object_id")
        if object_id is not None:
            _object_id(object_id)
        try:
            limit = int(request.query.get("limit", "100"))
            before = int(request.query["before"]) if "before" in request.query else None
        except ValueError:
            raise BadRequest("limit and before must be integers") from None
        if not 1 <= limit <= 1000:
            raise BadRequest("limit must be between 1 and 1000")
        if before is not None and not -_MAX_ROW_ID - 1 <= before <= _MAX_ROW_ID:
            # Beyond a 64-bit row id the database driver overflows (a 500).
            raise BadRequest("before must be a 64-bit integer")
        rows = await self.service.store.transitions(object_id=object_id, limit=limit,
                                                    before_id=before)
        return web.json_response({"transitions": [
            {"id": t.id, "at": _iso(t.at), "object_id": t.object_id, "from": t.from_mode,
             "to": t.to_mode, "reason": t.reason, "score": t.score, "signals": t.signals}
            for t in rows
        ]})

    async def get_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.service.status())

    async def get_health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "role": Role.CONTROLLER})
