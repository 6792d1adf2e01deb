"""The OpenAPI 3 document of the master's REST API, served at
``/api/v1/openapi.json``. A test checks that every route the master serves is
described here, and a fuzzing run checks that responses match it."""

from __future__ import annotations

from typing import Any

from echofs import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, Any], *, status: str = "200", tag: str = "files",
        parameters: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "tags": [tag],
        "responses": {status: ok, "default": _json(_ERROR, "Error")},
    }
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = body
    return op


def _param(name: str, where: str = "query", *, required: bool = False,
           schema: dict[str, Any] | None = None, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema or {"type": "string"}, "description": description}


_OBJ = {"type": "object"}
_FILE_ID = _param("file_id", "path", description="File id (stable across versions)")
_VERSION = _param("version", schema={"type": "integer", "minimum": 1},
                  description="A version number (default: current)")
_PATH = _param("path", "path", description="Slash-separated file name")
_CONSISTENCY = _param("consistency", schema={"type": "string",
                                             "enum": ["auto", "strong", "available"]},
                      description="Per-upload consistency hint")
_JSON_BODY = {"required": True, "content": {"application/json": {"schema": _OBJ}}}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}

_BINARY = {"type": "string", "format": "binary"}


_INT = {"type": "integer", "minimum": 0}
# The health body's storage part; the rest of the body is described in the
# module docstring of echofs.master.http_health.
_STORAGE = {"type": "object", "required": ["shared_disk", "note", "reclaimable"], "properties": {
    "shared_disk": {"type": "boolean", "description":
                    "true when every copy lives under one data folder (the embedded node's "
                    "in-process workers): copies guard against a damaged copy, not a "
                    "failed disk; false when not known to be shared (remote workers)"},
    "note": {"type": ["string", "null"],
             "description": "the same for people, e.g. '3 workers on one disk: ...'"},
    "reclaimable": {
        "type": "object", "description": "deleted data whose copies are still on disk",
        "required": ["chunks", "bytes", "grace_seconds", "earliest_at",
                     "earliest_in_seconds"],
        "properties": {
            "chunks": _INT,
            "bytes": {**_INT, "description": "stored bytes, once per copy"},
            "grace_seconds": {"type": "number", "description":
                              "the collector leaves an unreferenced chunk this long after "
                              "its last use (GC_GRACE_SECONDS)"},
            "earliest_at": {"type": ["string", "null"], "format": "date-time",
                            "description": "UTC time the first of them becomes collectable"},
            "earliest_in_seconds": {"type": ["number", "null"], "minimum": 0},
        }},
}}
_HEALTH = {"type": "object", "required": ["status", "role", "version", "storage"],
           "properties": {"status": {"type": "string",
                                     "enum": ["ok", "degraded", "unavailable"]},
                          "role": {"type": "string"}, "version": {"type": "string"},
                          "storage": _STORAGE}}


def openapi_document() -> dict[str, Any]:
    files = {"$ref": "#/components/schemas/File"}
    upload = {"$ref": "#/components/schemas/UploadResult"}
    download = {
        "description": "The file's bytes (206 for a Range)",
        "content": {"application/octet-stream": {"schema": _BINARY},
                    "*/*": {"schema": _BINARY}},
    }
    raw_upload = {"required": True,
                  "content": {"application/octet-stream": {"schema": _BINARY}}}
    multipart = {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": _BINARY, "path": {"type": "string"},
                       "user_id": {"type": "string"},
                       "consistency": {"type": "string",
                                       "enum": ["auto", "strong", "available"]}},
    }}}}
    consistency = "consistency"
    consistency_form = {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": _BINARY, "path": {"type": "string"},
                       "user_id": {"type": "string"},
                       "consistency": {"type": "string",
                                       "enum": ["auto", "strong", "available"]},
                       "hint": {"type": "string", "enum": ["auto", "strong", "available"]}},
    }}}}
    consistency_upload = {"allOf": [upload, {
        "type": "object", "required": ["success", "message", "data", "consistency"],
        "properties": {"consistency": {
            "type": "object",
            "required": ["mode_used", "mode", "requested", "version", "replicas", "latency"],
            "properties": {"mode_used": {"type": "string", "enum": ["C", "A", "Hybrid"]},
                           "mode": {"type": "string"},
                           "requested": {"type": "string",
                                         "enum": ["auto", "strong", "available"]},
                           "version": {"type": "integer"}, "replicas": {"type": "integer"},
                           "latency": {"type": "string"}}}}}]}
    paths: dict[str, Any] = {
        "/api/v1/health": {"get": _op("Master health",
                                      _json({"$ref": "#/components/schemas/Health"}),
                                      tag="cluster")},
        "/api/v1/openapi.json": {"get": _op("This document", _json(_OBJ), tag="cluster")},
        "/api/v1/workers/health": {"get": _op("Workers as the master sees them (admin)",
                                              _json(_OBJ), tag="cluster")},
        "/metrics": {"get": _op("Prometheus metrics", {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}}}, tag="cluster")},
        "/api/v1/auth/register": {"post": _op(
            "Create an account (first one is admin); the email is optional and unique",
            _json(_OBJ, "Created"), status="201", tag="auth", body=_json_body({
                "type": "object", "required": ["username", "password"],
                "properties": {"username": {"type": "string"}, "email": {"type": "string"},
                               "password": {"type": "string"}}}))},
        "/api/v1/auth/login": {"post": _op(
            "Get a token: by email or username (any wrong credentials: 401)", _json(_OBJ),
            tag="auth", body=_json_body({
                "type": "object", "required": ["password"],
                "properties": {"email": {"type": "string"}, "username": {"type": "string"},
                               "password": {"type": "string"}}}))},
        "/api/v1/auth/me": {"get": _op("Who am I", _json(_OBJ), tag="auth")},
        "/api/v1/auth/logout": {"post": _op("Revoke every token of my account",
                                            {"description": "Signed out"}, status="204",
                                            tag="auth")},
        "/api/v1/auth/users/{username}": {
            "patch": _op("Change an account's role (admin)", _json(_OBJ), tag="auth",
                         parameters=[_param("username", "path")], body=_JSON_BODY),
            "delete": _op("Delete an account (admin)", {"description": "Deleted"},
                          status="204", tag="auth", parameters=[_param("username", "path")]),
        },
        "/api/v1/auth/profile": {"get": _op("Who am I (original name)", _json(_OBJ),
                                            tag="auth")},
        # S3 access keys of the signed-in account (echofs.auth.access_keys).
        "/api/v1/auth/keys": {
            "post": _op("Create an S3 access key (the secret is shown only now)", _json({
                "type": "object", "required": ["access_key_id", "secret_access_key"],
                "properties": {"access_key_id": {"type": "string"},
                               "secret_access_key": {"type": "string"},
                               "created_at": {"type": "number"}}}, "Created"),
                        status="201", tag="auth"),
            "get": _op("List my S3 access keys", _json({
                "type": "object", "required": ["keys"],
                "properties": {"keys": {"type": "array", "items": _OBJ}}}), tag="auth"),
        },
        "/api/v1/auth/keys/{access_key_id}": {
            "delete": _op("Revoke an S3 access key", _json(_OBJ), tag="auth",
                          parameters=[_param("access_key_id", "path")]),
        },
        "/api/v1/files": {"get": _op("List files", _json({
            "type": "object", "required": ["files", "count", "next_cursor"],
            "properties": {"files": {"type": "array", "items": files},
                           "count": {"type": "integer"},
                           "next_cursor": {"type": ["string", "null"]}}}),
            parameters=[_param("prefix"), _param("cursor"),
                        _param("limit", schema={"type": "integer", "minimum": 1,
                                                "maximum": 1000}),
                        _param("all", schema={"type": "string", "enum": ["true", "false"]},
                               description="Admins: every user's files"),
                        _param("user_id", description="Open mode: one owner's files")])},
        "/api/v1/files/upload": {"post": _op("Upload (multipart, field 'file')",
                                             _json(upload, "Created"), status="201",
                                             parameters=[_CONSISTENCY], body=multipart)},
        "/api/v1/files/upload/consistency": {"post": _op(
            "Upload with the original's consistency and hint fields (multipart)",
            _json(consistency_upload), body=consistency_form)},
        "/api/v1/replication/stats": {"get": _op(
            "The replication queue by reason and target, and the replicator (admin)",
            _json({"type": "object", "required": ["success", "data", "queue", "replicator"],
                   "properties": {"queue": {"type": "object", "required": [
                       "depth", "due_now", "by_reason", "by_target_worker"]}}}),
            tag="cluster")},
        "/metrics/dashboard": {"get": _op(
            "The original's metrics summary, from this process's metrics (admin)",
            _json({"type": "object", "required": ["file_operations", "performance",
                                                  "system", "grpc", "http"]}),
            tag="cluster")},
        "/api/v1/files/content/{path}": {
            "put": _op("Upload a raw body to a path", _json(upload, "Created"),
                       status="201", parameters=[_PATH, _CONSISTENCY], body=raw_upload),
            "get": _op("Download the current version by path", download, parameters=[
                _PATH, _VERSION]),
        },
        "/api/v1/files/{file_id}": {
            "get": _op("Metadata: size, digest, chunks and replicas", _json(files),
                       parameters=[_FILE_ID, _VERSION]),
            "delete": _op("Delete the file, or one version", _json(_OBJ),
                          parameters=[_FILE_ID, _VERSION]),
        },
        "/api/v1/files/{file_id}/versions": {"get": _op("Versions kept", _json(_OBJ),
                                                        parameters=[_FILE_ID])},
        "/api/v1/files/{file_id}/download": {"get": _op(
            "Download (Range, ETag, If-None-Match)", download,
            parameters=[_FILE_ID, _VERSION])},
        "/api/v1/consistency/mode": {"get": _op(
            "A file's mode (admin)", _json(_OBJ), tag=consistency,
            parameters=[_param("object_id", required=True)])},
        "/api/v1/consistency/hint": {"post": _op("Set a file's hint", _json(_OBJ),
                                                 tag=consistency, body=_JSON_BODY)},
        "/api/v1/consistency/override": {
            "post": _op("Force a mode on every non-critical file", _json(_OBJ),
                        tag=consistency, body=_JSON_BODY),
            "delete": _op("Clear the override", _json(_OBJ), tag=consistency),
        },
        "/api/v1/consistency/critical-keys": {
            "get": _op("Critical keys (always strong)", _json(_OBJ), tag=consistency),
            "post": _op("Add critical keys", _json(_OBJ), tag=consistency, body=_JSON_BODY),
            "delete": _op("Remove critical keys", _json(_OBJ), tag=consistency,
                          parameters=[_param("object_id")]),
        },
        "/api/v1/consistency/transitions": {"get": _op(
            "Audit log of mode changes", _json(_OBJ), tag=consistency,
            parameters=[_param("object_id"),
                        _param("limit", schema={"type": "integer", "minimum": 1,
                                                "maximum": 1000}),
                        _param("before", schema={"type": "integer"})])},
        "/api/v1/consistency/status": {"get": _op("Controller status", _json(_OBJ),
                                                  tag=consistency)},
        "/api/v1/consistency/health": {"get": _op("Controller health", _json(_OBJ),
                                                  tag=consistency)},
    }
    paths.update(_upload_session_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "EchoFS", "version": __version__,
                 "description": "Distributed file store with adaptive consistency."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"}},
            "schemas": {
                "Health": _HEALTH,
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "object", "required": ["code", "message"],
                              "properties": {"code": {"type": "string"},
                                             "message": {"type": "string"}}}}},
                "File": {"type": "object",
                         "required": ["file_id", "path", "size", "version", "mode", "blake3"],
                         "properties": {"file_id": {"type": "string"},
                                        "path": {"type": "string"},
                                        "size": {"type": "integer", "minimum": 0},
                                        "version": {"type": "integer", "minimum": 1},
                                        "mode": {"type": "string"},
                                        "blake3": {"type": "string"}}},
                "UploadResult": {"type": "object",
                                 "required": ["file_id", "version", "size", "chunks",
                                              "blake3", "mode", "replicas_acked", "etag"],
                                 "properties": {"file_id": {"type": "string"},
                                                "version": {"type": "integer"},
                                                "size": {"type": "integer"},
                                                "chunks": {"type": "integer"},
                                                "blake3": {"type": "string"},
                                                "mode": {"type": "string"},
                                                "replicas_acked": {"type": "integer"},
                                                "etag": {"type": "string"}}},
            },
        },
        "security": [{"bearer": []}, {}],
    }


# -- resumable uploads (echofs.master.http_upload_sessions) -------------------------------

_SESSION_ID = _param("session_id", "path", schema={"type": "string",
                                                   "pattern": "^[0-9a-f]{32}$"},
                     description="Upload session id")
_PART_NO = _param("part", "path", schema={"type": "integer", "minimum": 0,
                                          "maximum": 999_999_999},
                  description="Part number, from 0")
_SESSION = {"type": "object",
            "required": ["session_id", "path", "file_size", "chunk_size", "total_chunks",
                         "state", "expires_at"],
            "properties": {"session_id": {"type": "string"}, "path": {"type": "string"},
                           "file_size": {"type": ["integer", "null"], "minimum": 0,
                                         "description": "null: parts of any size, chosen "
                                                        "at complete"},
                           "chunk_size": {"type": "integer", "minimum": 1},
                           "total_chunks": {"type": ["integer", "null"], "minimum": 1},
                           "state": {"type": "string", "enum": ["open", "completed"]},
                           "consistency_mode": {"type": "string"},
                           "expires_at": {"type": "string", "format": "date-time"}}}
_PART_EXPECTED = {"type": "object", "required": ["index", "offset", "size"],
                  "properties": {"index": _INT, "offset": _INT, "size": _INT}}
_PART_HELD = {"type": "object", "required": ["index", "size", "blake3"],
              "properties": {"index": _INT, "size": _INT, "blake3": {"type": "string"},
                             "sha256": {"type": ["string", "null"]},
                             "md5": {"type": ["string", "null"]},
                             "chunks": _INT, "replicas_acked": _INT}}


def _upload_session_paths() -> dict[str, Any]:
    init_body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["file_name", "file_size"],
        "properties": {"file_name": {"type": "string", "description": "or 'path'"},
                       "file_size": {"type": "integer", "minimum": 0},
                       "chunk_size": {"type": "integer", "minimum": 1,
                                      "description": "part size (default: the server's)"},
                       "consistency": {"type": "string",
                                       "enum": ["auto", "strong", "available"]},
                       "user_id": {"type": "string", "description": "open mode: owner"}}}}}}
    created = {**_SESSION, "required": [*_SESSION["required"], "chunks"], "properties": {
        **_SESSION["properties"], "chunks": {"type": "array", "items": _PART_EXPECTED}}}
    status = {**_SESSION, "required": [*_SESSION["required"], "parts", "received", "missing"],
              "properties": {**_SESSION["properties"],
                             "parts": {"type": "array", "items": _PART_HELD},
                             "received": {"type": "array", "items": _INT},
                             "missing": {"type": "array", "items": _INT}}}
    part_body = {"required": True,
                 "content": {"application/octet-stream": {"schema": _BINARY}}}
    digests = [_param("X-EchoFS-BLAKE3", "header", schema={"type": "string"},
                      description="BLAKE3 of the part's bytes (hex); checked"),
               _param("X-EchoFS-SHA256", "header", schema={"type": "string"},
                      description="SHA-256 of the part's bytes (hex); checked")]
    part_op = _op("Send one part (again: replaces it; any order, concurrently)",
                  _json(_PART_HELD), tag="uploads",
                  parameters=[_SESSION_ID, _PART_NO, *digests], body=part_body)
    complete_body = {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": {
            "blake3": {"type": "string", "description": "the whole file's BLAKE3 (hex); checked"},
            "parts": {"type": "array", "items": _INT,
                      "description": "sessions without a file_size: the parts the file is "
                                     "made of, ascending (default: all held)"}}}}}}
    upload = {"$ref": "#/components/schemas/UploadResult"}
    complete = _op("Make the parts the file's new version (again: the same version)",
                   _json(upload, "Created"), status="201", tag="uploads",
                   parameters=[_SESSION_ID], body=complete_body)
    complete["responses"]["200"] = _json(upload, "Completed before")
    return {
        "/api/v1/files/upload/init": {"post": _op(
            "Open a resumable upload session", _json(created, "Created"), status="201",
            tag="uploads", body=init_body)},
        "/api/v1/files/upload/sessions": {"get": _op(
            "My open upload sessions", _json({
                "type": "object", "required": ["sessions", "count"],
                "properties": {"sessions": {"type": "array", "items": _SESSION},
                               "count": _INT}}), tag="uploads")},
        "/api/v1/files/upload/{session_id}": {
            "get": _op("A session and the parts it holds", _json(status), tag="uploads",
                       parameters=[_SESSION_ID]),
            "delete": _op("Abort a session (its parts' chunks are collected)", _json(_OBJ),
                          tag="uploads", parameters=[_SESSION_ID]),
        },
        "/api/v1/files/upload/{session_id}/parts/{part}": {"put": part_op},
        "/api/v1/files/upload/{session_id}/chunks/{part}": {"put": {
            **part_op, "summary": "Send one part (the original's name: a chunk)"}},
        "/api/v1/files/upload/{session_id}/complete": {"post": complete},
    }
