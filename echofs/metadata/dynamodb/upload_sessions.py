"""Resumable upload sessions and their parts on DynamoDB (the SQL
repository's ``echofs.metadata.upload_sessions``): the same methods,
records and errors.

Items of the ``sessions`` table:

``S#<id>`` / ``SESSION``            a session: ``owner``, ``path``,
                                     ``total_size``, ``part_size``, ``mode``,
                                     ``state``, ``created_at``,
                                     ``expires_at``, ``parts_gen`` (moved
                                     by every part written); once completed
                                     ``file_id``, ``version``, ``blake3``;
                                     an S3 upload's fields (see
                                     ``s3_uploads``). In ``gsi1`` as ``EXP``
                                     / ``<expires_at>#<id>``: the expirer's
                                     candidates and the list of everyone's
                                     sessions.
``S#<id>`` / ``P#<part:05d>``       a part: its digests, ``size``,
                                     ``replicas_acked``, ``stored_at``, a
                                     ``token`` naming this write of it, and
                                     its chunks (``chunks``: [chunk id,
                                     size] in order) inline when few, else
                                     in ``pages``:
``S#<id>`` / ``Q#<token>#<page:04d>`` a page of a part's chunk list,
                                     written before the part that names it.
``O#<owner>`` / ``<id>``            an open session of ``owner`` with its
                                     ``expires_at``: the owner's sessions
                                     (and quota) in one consistent Query.
``O#<owner>`` / ``#LOCK``           ``v``: moved by every admission under
                                     a quota, so two masters admitting the
                                     last free place conflict.
``L#<owner>#<bucket>`` / ``<key>\\0<id>`` an open S3 upload (``s3_uploads``).

Rules (the package's, applied to sessions):

- A part's chunks are referenced from before the part is recorded until
  after it is dropped: ``record_upload_part`` takes a reference on each
  chunk (refused if the collector claimed one), then puts the part under a
  condition check that the session is open and unexpired, then gives back
  the references of the part it replaced. A crash in between leaks, never
  loses.
- Completing publishes the version with its head (the rules of
  ``commits``) and closes the session in ONE transaction conditioned on
  the session being open and its ``parts_gen`` being the one read with
  the parts, so the version appears once or not at all, is made of the
  parts as they are when it appears (a part written meanwhile makes the
  completion read them again, as SQL's lock would), and a partial upload
  is never visible. A retried complete finds the session completed and
  answers the version it made. The parts are dropped after; each part's
  references are given back by whoever's delete removed its item, so the
  expirer and a completion's clean-up meeting never give back twice.
- Abort and expiry delete the session item (conditioned on its state or
  expiry), then its parts, then give back the parts' references.
- Transactions carry a ``ClientRequestToken``: the client's retries of
  one (after a conflict or a 5xx) never apply it twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from echofs.core.consistency import Mode
from echofs.core.errors import Conflict, NotFound
from echofs.core.manifest import FileRecord, NewChunk, VersionRecord
from echofs.core.upload_sessions import PartLayout, PartRecord, SessionState, UploadSession
from echofs.metadata.dynamodb.base import (
    CHUNKS,
    FILES,
    INDEX,
    SESSIONS,
    DynamoBase,
    chunk_key,
    each,
)
from echofs.metadata.dynamodb.chunks import replicas_in
from echofs.metadata.dynamodb.connection import (
    decode,
    encode,
    value,
)
from echofs.metadata.dynamodb.files import WRITE_DEADLINE, backoff, conflict_lost, head_key
from echofs.metadata.dynamodb.long_keys import key_text
from echofs.metadata.records import CommitRequest
from echofs.metadata.upload_sessions import SessionCommit, SessionQuotaExceeded, StoredPart

SESSION = "SESSION"
EXPIRY = "EXP"
LOCK = "#LOCK"
FAILED = "ConditionalCheckFailed"
_OPEN = SessionState.OPEN.value
# A part's chunk list stays in the part item up to this many chunks, else
# goes to pages of this many (an item holds at most 400 KB).
INLINE_CHUNKS = PAGE_CHUNKS = 1000
# Rounds of read-then-conditional-write before giving up on a contended item.
ROUNDS = 50


class _PartsMoved(Exception):
    """A part of the session changed after a completion read them."""


def session_key(session_id: str) -> tuple[str, str]:
    return f"S#{session_id}", SESSION


def part_sort_key(part: int) -> str:
    return f"P#{part:05d}"


def page_sort_key(token: str, page: int) -> str:
    return f"Q#{token}#{page:04d}"


def owner_key(owner: str) -> str:
    return f"O#{owner}"


def listing_key(owner: str, bucket: str) -> str:
    return f"L#{owner}#{bucket}"


def listing_sort_key(key: str, upload_id: str) -> str:
    # NUL sorts before every character a key continues with, so the order
    # is by key, then by upload id (S3 keys hold no NUL). A key of S3's
    # full 1024 bytes would not fit with its id: a long one is cut
    # (``long_keys``).
    return f"{key_text(key)}\x00{upload_id}"


def expiry_sort_key(expires_at: float, session_id: str) -> str:
    return f"{expires_at:020.6f}#{session_id}"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": value(pk), "sk": value(sk)}


def session_record(item: dict[str, Any]) -> UploadSession:
    total = item.get("total_size")
    layout = PartLayout(None if total is None else int(total), int(item["part_size"]))
    version = item.get("version")
    return UploadSession(item["session_id"], item["owner"], item["path"], layout,
                         Mode(item["mode"]), SessionState(item["state"]),
                         float(item["created_at"]), float(item["expires_at"]),
                         item.get("file_id"), None if version is None else int(version),
                         item.get("blake3"))


def _part_record(item: dict[str, Any]) -> PartRecord:
    return PartRecord(int(item["part"]), int(item["size"]), item["blake3"], item.get("sha256"),
                      item.get("md5"), int(item["chunk_count"]), int(item["replicas_acked"]),
                      float(item["stored_at"]))


def _require_open(session: UploadSession, now: float) -> None:
    if session.state != SessionState.OPEN:
        raise Conflict("this upload session is already completed", code="session_completed")
    if session.expired(now):
        raise NotFound("this upload session has expired", code="session_expired")


class DynamoUploadSessions(DynamoBase):
    # -- reading ---------------------------------------------------------------------------

    async def _session_item(self, session_id: str) -> dict[str, Any]:
        item = await self.db.get(SESSIONS, *session_key(session_id))
        if item is None:
            raise NotFound("no such upload session", code="session_not_found")
        return item

    async def get_upload_session(self, session_id: str) -> UploadSession:
        return session_record(await self._session_item(session_id))

    async def _part_items(self, session_id: str) -> list[dict[str, Any]]:
        return [item async for item in self.db.query(
            SESSIONS, KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues={":pk": value(session_key(session_id)[0]),
                                       ":p": value("P#")})]

    async def upload_session_parts(self, session_id: str) -> list[PartRecord]:
        return [_part_record(item) for item in await self._part_items(session_id)]

    async def _part_chunks(self, session_id: str, item: dict[str, Any]) -> list[tuple[str, int]]:
        """(chunk id, size) of a part item's chunks, in order."""
        if "chunks" in item:
            return [(str(c), int(s)) for c, s in item["chunks"]]
        pk = session_key(session_id)[0]
        pages = await self.db.get_many(SESSIONS, [(pk, page_sort_key(item["token"], n))
                                                  for n in range(int(item["pages"]))])
        listed: list[tuple[str, int]] = []
        for n in range(int(item["pages"])):
            listed.extend((str(c), int(s))
                          for c, s in pages[(pk, page_sort_key(item["token"], n))]["chunks"])
        return listed

    async def list_upload_sessions(self, owner: str | None) -> list[UploadSession]:
        """Open, unexpired sessions (of ``owner``, or everyone's), oldest first."""
        now = time.time()
        if owner is not None:
            ids = [item["sk"] async for item in self.db.query(
                SESSIONS, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": value(owner_key(owner))})
                if item["sk"] != LOCK and float(item["expires_at"]) > now]
            found = await self.db.get_many(SESSIONS, [session_key(i) for i in ids])
            items = list(found.values())
        else:
            # Everyone's: the expiry index from now on (eventually
            # consistent, as a listing of many masters' sessions may be).
            items = [item async for item in self.db.query(
                SESSIONS, index=INDEX,
                KeyConditionExpression="g1pk = :exp AND g1sk > :now",
                ExpressionAttributeValues={":exp": value(EXPIRY),
                                           ":now": value(expiry_sort_key(now, ""))})]
        sessions = [session_record(item) for item in items]
        sessions = [s for s in sessions if s.state == SessionState.OPEN and not s.expired(now)]
        sessions.sort(key=lambda s: (s.created_at, s.session_id))
        return sessions[:1000]

    async def upload_session_manifest(self, session_id: str, parts: Sequence[int]
                                      ) -> list[NewChunk]:
        """The chunks of these parts of the session, in the order of
        ``parts``, with their replicas."""
        listed = await self._chunks_of_parts(session_id, parts)
        items = await self.db.get_many(CHUNKS, [chunk_key(c) for c, _ in listed])
        chunks: list[NewChunk] = []
        for chunk_id, size in listed:
            item = items.get(chunk_key(chunk_id))
            if item is None:
                continue  # not recorded (cannot happen while a part holds it)
            chunks.append(NewChunk(chunk_id, size, int(item.get("stored_size", size)),
                                   bool(item.get("compressed", False)),
                                   replicas_in(item)))
        return chunks

    async def _chunks_of_parts(self, session_id: str, parts: Sequence[int]
                               ) -> list[tuple[str, int]]:
        pk = session_key(session_id)[0]
        found = await self.db.get_many(SESSIONS, [(pk, part_sort_key(n)) for n in parts])
        listed: list[tuple[str, int]] = []
        for n in parts:
            item = found.get((pk, part_sort_key(n)))
            if item is not None:
                listed.extend(await self._part_chunks(session_id, item))
        return listed

    # -- writing ---------------------------------------------------------------------------

    async def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        return await self.db.transact(items)

    async def create_upload_session(self, *, owner: str, path: str, layout: PartLayout,
                                    mode: Mode, lifetime: float,
                                    max_open: int) -> UploadSession:
        """A new open session, unless ``owner`` already has ``max_open`` open
        sessions that have not expired (429 ``too_many_sessions``)."""
        now = time.time()
        session = UploadSession(uuid.uuid4().hex, owner, path, layout, mode, SessionState.OPEN,
                                now, now + lifetime)
        table = self.db.table(SESSIONS)
        pk, sk = session_key(session.session_id)
        item = {"pk": pk, "sk": sk, "session_id": session.session_id, "owner": owner,
                "path": path, "total_size": layout.total_size, "part_size": layout.part_size,
                "total_parts": layout.total_parts, "mode": mode.value, "state": _OPEN,
                "created_at": now, "expires_at": session.expires_at, "parts_gen": 0,
                "g1pk": EXPIRY,
                "g1sk": expiry_sort_key(session.expires_at, session.session_id)}
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": table, "Item": encode(item),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": table, "Item": encode({
                "pk": owner_key(owner), "sk": session.session_id,
                "expires_at": session.expires_at, "created_at": now})}},
        ]
        if max_open <= 0:
            if await self._transact(items) is not None:
                raise Conflict("an upload session of this id exists", code="session_exists")
            return session
        for _ in range(ROUNDS):
            held = [i async for i in self.db.query(
                SESSIONS, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": value(owner_key(owner))})]
            seen = next((int(i.get("v", 0)) for i in held if i["sk"] == LOCK), None)
            count = sum(1 for i in held if i["sk"] != LOCK and float(i["expires_at"]) > now)
            if count >= max_open:
                raise SessionQuotaExceeded(
                    f"{count} upload sessions are open already (the limit is {max_open}); "
                    "complete or abort one first")
            # The count holds only if no one else admitted meanwhile: every
            # admission moves the lock item, under the condition that it did
            # not move since it was read.
            lock: dict[str, Any] = {
                "TableName": table, "Key": _key(owner_key(owner), LOCK),
                "UpdateExpression": "SET v = if_not_exists(v, :z) + :one",
                "ExpressionAttributeValues": {":z": value(0), ":one": value(1)}}
            if seen is None:
                lock["ConditionExpression"] = "attribute_not_exists(v)"
            else:
                lock["ConditionExpression"] = "v = :seen"
                lock["ExpressionAttributeValues"][":seen"] = value(seen)
            if await self._transact([*items, {"Update": lock}]) is None:
                return session
        raise Conflict("too many sessions opened at once; try again", code="busy")

    async def record_upload_part(self, session_id: str, stored: StoredPart) -> PartRecord:
        """Make ``stored`` the session's part ``stored.part`` (replacing what
        the part held before: a retry, or new bytes). Refused if the session
        is not open, or a chunk of the part was collected meanwhile."""
        now = time.time()
        _require_open(await self.get_upload_session(session_id), now)
        used = [c.chunk_id for c in stored.chunks]
        failed = await self.add_refs(used, now)
        if failed:
            await self.drop_refs([c for c in used if c not in failed], now)
            raise Conflict("a chunk of this part was collected before it was recorded; "
                           "send the part again", code="chunk_collected")
        try:
            await self._record_part_copies(stored, now)
            replaced = await self._put_part(session_id, stored, now)
        except BaseException:
            await self.drop_refs(used, now)
            raise
        if replaced is not None:
            await self._forget_replaced(session_id, replaced, now)
        return PartRecord(stored.part, stored.size, stored.blake3, stored.sha256, stored.md5,
                          len(stored.chunks), stored.replicas_acked, now)

    async def _record_part_copies(self, stored: StoredPart, now: float) -> None:
        """Record the workers that hold the part's chunks (as a commit does)."""
        await self.record_copies(  # type: ignore[attr-defined]
            [(c.chunk_id, w) for c in stored.chunks for w in c.replicas], now)

    async def _put_part(self, session_id: str, stored: StoredPart, now: float
                        ) -> dict[str, Any] | None:
        """Put the part under the session's open, unexpired state; return
        the part item it replaced (None: there was none)."""
        table = self.db.table(SESSIONS)
        pk = session_key(session_id)[0]
        token = uuid.uuid4().hex
        listed = [[c.chunk_id, c.size] for c in stored.chunks]
        item: dict[str, Any] = {
            "pk": pk, "sk": part_sort_key(stored.part), "part": stored.part,
            "size": stored.size, "blake3": stored.blake3, "sha256": stored.sha256,
            "md5": stored.md5, "chunk_count": len(stored.chunks),
            "replicas_acked": stored.replicas_acked, "stored_at": now, "token": token}
        if len(listed) <= INLINE_CHUNKS:
            item["chunks"] = listed
        else:
            pages = [listed[i:i + PAGE_CHUNKS] for i in range(0, len(listed), PAGE_CHUNKS)]
            item["pages"] = len(pages)
            await self.db.write_many(SESSIONS, puts=[
                {"pk": pk, "sk": page_sort_key(token, n), "chunks": page}
                for n, page in enumerate(pages)])
        for _ in range(ROUNDS):
            old = await self.db.get(SESSIONS, pk, part_sort_key(stored.part))
            put: dict[str, Any] = {"TableName": table, "Item": encode(item)}
            if old is None:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                put["ConditionExpression"] = "#t = :old"
                put["ExpressionAttributeNames"] = {"#t": "token"}
                put["ExpressionAttributeValues"] = {":old": value(old["token"])}
            reasons = await self._transact([
                # Every change of a part moves the session's generation: a
                # completion that read the parts before it then fails.
                {"Update": {
                    "TableName": table, "Key": _key(*session_key(session_id)),
                    "UpdateExpression": "SET parts_gen = parts_gen + :one",
                    "ConditionExpression": "#s = :open AND expires_at > :now",
                    "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": {":open": value(_OPEN), ":now": value(now),
                                                  ":one": value(1)}}},
                {"Put": put}])
            if reasons is None:
                return old
            if reasons[0] == FAILED:
                await self._forget_pages(pk, item)
                _require_open(await self.get_upload_session(session_id), now)
                raise Conflict("this upload session is already completed",
                               code="session_completed")
            # Another write of this part landed meanwhile: replace that one.
        await self._forget_pages(pk, item)
        raise Conflict("this part is being sent many times at once; try again", code="busy")

    async def complete_upload_session(self, session_id: str, commit: SessionCommit
                                      ) -> tuple[FileRecord, VersionRecord, bool]:
        """Make the session's parts its file's next version and close the
        session, in one transaction. Completing a completed session answers
        the version it made (a retried complete); the flag says whether
        this call made it."""
        for _ in range(ROUNDS):
            item = await self._session_item(session_id)
            session = session_record(item)
            if session.state == SessionState.COMPLETED:
                return await self._completed(session)
            _require_open(session, time.time())
            done = await self._complete(item, session, commit)
            if done is not None:
                return done
            # A part changed since they were read: read them again.
        raise Conflict("the session's parts keep changing; complete again",
                       code="parts_changed")

    async def _complete(self, item: dict[str, Any], session: UploadSession,
                        commit: SessionCommit) -> tuple[FileRecord, VersionRecord, bool] | None:
        """One attempt, from the session ``item`` as read; None if a part
        changed meanwhile."""
        now = time.time()
        session_id = session.session_id
        if commit.versions_kept < 1:  # refused before any write, as SQL's rollback leaves none
            raise ValueError("at least one version must be kept")
        held = {int(p["part"]): p for p in await self._part_items(session_id)}
        if any(n not in held or held[n]["blake3"] != b3 for n, b3 in commit.parts):
            raise Conflict("the session's parts changed while it was completing; "
                           "complete again", code="parts_changed")
        parts = [held[n] for n, _ in commit.parts]
        if sum(int(p["size"]) for p in parts) != commit.size:
            raise Conflict("the parts do not add up to the file's size", code="parts_changed")
        listed: list[tuple[str, int]] = []
        for p in parts:
            listed.extend(await self._part_chunks(session_id, p))
        stored = await self.db.get_many(CHUNKS, [chunk_key(c) for c, _ in listed])
        if any(chunk_key(c) not in stored for c, _ in listed):  # cannot happen: referenced
            raise Conflict("a chunk of this session was collected", code="chunk_collected")
        chunks = tuple(NewChunk(c, size, int(stored[chunk_key(c)]["stored_size"]),
                                bool(stored[chunk_key(c)].get("compressed", False)), ())
                       for c, size in listed)
        request = CommitRequest(
            owner=session.owner, path=session.path, chunks=chunks, size=commit.size,
            blake3=commit.blake3, mode=session.mode,
            replicas_acked=min((int(p["replicas_acked"]) for p in parts), default=0),
            versions_kept=commit.versions_kept, object_meta=commit.object_meta)
        try:
            published = await self._publish_completion(item, request, commit, now)
        except _PartsMoved:
            return None
        if published is None:  # another call completed it meanwhile
            return await self._completed(await self.get_upload_session(session_id))
        # The version holds the chunks now: the parts may let go of theirs.
        await self._drop_parts(session_id, now)
        record, version = published
        await self._prune(record, commit.versions_kept, now)  # type: ignore[attr-defined]
        return (await self.get_file(record.file_id),  # type: ignore[attr-defined]
                await self.get_version(record.file_id, version.version),  # type: ignore[attr-defined]
                True)

    async def _completed(self, session: UploadSession
                         ) -> tuple[FileRecord, VersionRecord, bool]:
        assert session.file_id is not None and session.version is not None
        return (await self.get_file(session.file_id),  # type: ignore[attr-defined]
                await self.get_version(session.file_id, session.version),  # type: ignore[attr-defined]
                False)

    async def _publish_completion(self, item: dict[str, Any], request: CommitRequest,
                                  commit: SessionCommit, now: float
                                  ) -> tuple[FileRecord, VersionRecord] | None:
        """Publish the version in the transaction that closes the session
        (the commit's steps, ``DynamoCommits``); None if the session was
        completed by another call meanwhile (nothing of ours is left)."""
        session_id = item["session_id"]
        table = self.db.table(SESSIONS)
        taken = await self._take_refs([request], now)  # type: ignore[attr-defined]
        if taken[0] is not None:
            raise taken[0]
        manifest, pages = await self._write_manifest(request)  # type: ignore[attr-defined]
        close: list[dict[str, Any]] = [
            {"Delete": {"TableName": table, "Key": _key(owner_key(item["owner"]), session_id)}}]
        if "s3_bucket" in item:
            close.append({"Delete": {"TableName": table, "Key": _key(
                listing_key(item["owner"], item["s3_bucket"]),
                listing_sort_key(item["s3_key"], session_id))}})
        delay = 0.005
        published: tuple[FileRecord, VersionRecord] | None = None
        try:
            async with self._publishing(  # type: ignore[attr-defined]
                    request.owner, request.path):
                deadline = time.monotonic() + WRITE_DEADLINE
                while published is None:
                    head = await self.db.get(FILES, *head_key(request.owner, request.path))
                    number = 1 if head is None else int(head["current_version"]) + 1
                    file_id = uuid.uuid4().hex if head is None else str(head["file_id"])
                    # The session closes naming the version it makes; the
                    # condition keeps a second completion from making another.
                    closing = {"Update": {
                        "TableName": table, "Key": _key(*session_key(session_id)),
                        "UpdateExpression": "SET #s = :done, file_id = :f, version = :v, "
                                            "blake3 = :b3",
                        "ConditionExpression": "#s = :open AND expires_at > :now "
                                               "AND parts_gen = :gen",
                        "ExpressionAttributeNames": {"#s": "state"},
                        "ExpressionAttributeValues": {
                            ":done": value(SessionState.COMPLETED.value), ":f": value(file_id),
                            ":v": value(number), ":b3": value(commit.blake3),
                            ":open": value(_OPEN), ":now": value(now),
                            ":gen": value(int(item["parts_gen"]))}}}
                    published = await self._try_publish(  # type: ignore[attr-defined]
                        request, manifest, now, also=[closing, *close], head=head,
                        new_file_id=file_id)
                    if published is not None:
                        break
                    again = await self._session_item(session_id)
                    current = session_record(again)
                    if current.state == SessionState.COMPLETED:
                        break
                    _require_open(current, time.time())
                    if again["parts_gen"] != item["parts_gen"]:
                        raise _PartsMoved
                    if time.monotonic() > deadline:
                        raise conflict_lost()
                    delay = await backoff(delay)
        finally:
            if published is None:
                await self.drop_refs([c.chunk_id for c in request.chunks], now)
                await self.db.write_many(FILES, deletes=pages)
        return published

    async def _forget_pages(self, pk: str, item: dict[str, Any]) -> None:
        if "pages" in item:
            await self.db.write_many(SESSIONS, deletes=[
                (pk, page_sort_key(item["token"], n)) for n in range(int(item["pages"]))])

    async def _forget_replaced(self, session_id: str, old: dict[str, Any],
                               now: float) -> None:
        """After a part was replaced: delete the old write's pages, then
        give back its chunks' references (a crash in between leaks)."""
        used = [c for c, _ in await self._part_chunks(session_id, old)]
        await self._forget_pages(session_key(session_id)[0], old)
        await self.drop_refs(used, now)

    async def _drop_session(self, item: dict[str, Any], condition: str,
                            values: dict[str, Any], now: float) -> bool:
        """Delete a session under ``condition`` with its owner's and S3's
        entries, then its parts; False if the condition did not hold."""
        table = self.db.table(SESSIONS)
        session_id = item["session_id"]
        items: list[dict[str, Any]] = [
            {"Delete": {"TableName": table, "Key": _key(*session_key(session_id)),
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": {"#s": "state"},
                        "ExpressionAttributeValues": values}},
            {"Delete": {"TableName": table, "Key": _key(owner_key(item["owner"]), session_id)}},
        ]
        if "s3_bucket" in item:
            items.append({"Delete": {"TableName": table, "Key": _key(
                listing_key(item["owner"], item["s3_bucket"]),
                listing_sort_key(item["s3_key"], session_id))}})
        if await self._transact(items) is not None:
            return False
        await self._drop_parts(session_id, now)
        return True

    async def _drop_parts(self, session_id: str, now: float) -> None:
        """Delete every part of a session no one may add to any more, then
        give back their chunks' references. Two droppers may meet (the
        expirer and a completion's clean-up): a part's references are given
        back only by the one whose delete removed its item."""
        pk = session_key(session_id)[0]

        async def drop(sk: str) -> None:
            answer = await self.db.call(
                "delete_item", TableName=self.db.table(SESSIONS), Key=_key(pk, sk),
                ReturnValues="ALL_OLD")
            if not answer.get("Attributes"):
                return  # another dropper took it, and gives its references back
            old = decode(answer["Attributes"])
            used = [c for c, _ in await self._part_chunks(session_id, old)]
            await self._forget_pages(pk, old)
            await self.drop_refs(used, now)

        await each([item["sk"] for item in await self._part_items(session_id)], drop)

    async def abort_upload_session(self, session_id: str) -> None:
        """Drop an open session and its parts (their chunks go to the collector)."""
        now = time.time()
        for _ in range(ROUNDS):
            item = await self._session_item(session_id)
            if item["state"] != _OPEN:
                raise Conflict("this upload session is already completed",
                               code="session_completed")
            if await self._drop_session(item, "#s = :open", {":open": value(_OPEN)}, now):
                return
        raise Conflict("this upload session is changing; try again", code="busy")

    async def expire_upload_sessions(self, now: float, limit: int = 100) -> int:
        """Drop sessions past their expiry (open ones lose their parts, whose
        chunks the collector then takes; completed ones are just forgotten)."""
        candidates = [item async for item in self.db.query(
            SESSIONS, index=INDEX, limit=limit,
            KeyConditionExpression="g1pk = :exp AND g1sk <= :now",
            ExpressionAttributeValues={":exp": value(EXPIRY),
                                       ":now": value(expiry_sort_key(now, "~"))})]
        dropped = 0
        for candidate in candidates:
            # The index only suggests: the session is read again, and
            # deleted only if it is still past its expiry.
            item = await self.db.get(SESSIONS, *session_key(candidate["session_id"]))
            if item is None or float(item["expires_at"]) > now:
                continue
            if await self._drop_session(item, "expires_at <= :now AND attribute_exists(#s)",
                                        {":now": value(now)}, now):
                dropped += 1
        return dropped
