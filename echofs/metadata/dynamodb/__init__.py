"""The metadata contract on Amazon DynamoDB (or any endpoint that speaks its
API), through aioboto3. Selected by ``DATABASE_URL=dynamodb://?region=…``.

Everything the SQL repository (``echofs.metadata``) answers, this package
answers too, with the same records and errors; the contract suites in
``tests/unit/metadata`` run against both. What differs is how the rules are
kept: DynamoDB has no multi-row transactions of unbounded size, no joins and
no locks, so every rule below is a conditional write.

Tables
------
Five tables, each with a string partition key ``pk``, a string sort key
``sk`` and one sparse global secondary index ``gsi1`` (``g1pk``, ``g1sk``,
all attributes projected). Only items that carry ``g1pk`` appear in the
index, so each index answers one question cheaply. Names come from the URL's
``prefix`` (default ``echofs-``) or the original's variables
(``DYNAMODB_FILES_TABLE``, ``DYNAMODB_CHUNKS_TABLE``,
``DYNAMODB_SESSIONS_TABLE``; and ``DYNAMODB_ACCOUNTS_TABLE``,
``DYNAMODB_CONTROLLER_TABLE``). Sort keys are compared as UTF-8 bytes,
which is the order listings promise.

Long names. DynamoDB caps a sort key at 1024 bytes (a partition key at
2048), but a name may be 2048 bytes, an S3 key 1024 and an open-mode owner
255 characters. Every sort key built from such text (below: ``<path>``,
``<owner>`` in ``g1sk``, an S3 upload's ``<key>``) holds it whole up to 880
bytes (owners: 64); longer text is keyed by its longest prefix of at most
that many bytes ending on a character, then U+10FFFF, then 32 hex digits
of the blake3 of the whole text (``long_keys``), and the item keeps the
whole text (``path``, ``owner``, ``key``). Finding by name reads that key
and checks the whole name; a listing prefix longer than 880 bytes is
queried by its cut prefix and filtered on the whole path; ``after`` and
markers resume from the key of the text given. Keys keep the texts'
order (the proof is in ``long_keys``) with one exception: names sharing
their first 880 bytes (with their cut) list among themselves in the order
of their digests, not of their names — pagination stays consistent, as it
follows the keys (a long ``after`` that names no file resumes at its
digest's place among them). Owners are whole in partition keys (``F#<owner>``,
``BO#<owner>``, ``O#<owner>``, ``L#<owner>#<bucket>``: at most 1022 bytes
and a 63-character bucket).

``files``
  ``F#<owner>`` / ``P#<path>``        a file's head (``<path>`` cut when
                                       long, see above): ``file_id``,
                                       ``current_version`` and that
                                       version's size, blake3 and mode,
                                       times. Listing one owner's files by
                                       prefix is a Query from
                                       ``P#<prefix>`` on. In ``gsi1`` as
                                       ``FL#<crc32 of owner and path mod
                                       8>`` / ``<path>\x01<owner>``:
                                       everyone's files in (path, owner)
                                       order are a merge of eight Queries,
                                       and no index partition takes every
                                       commit.
  ``I#<file_id>`` / ``FILE``           the same file by id, the same
                                       attributes: both are written in one
                                       transaction conditional on the head.
  ``I#<file_id>`` / ``V#<version:010d>`` one version: size, blake3, mode,
                                       chunk count, replicas acked, created
                                       at, and its manifest: inline
                                       (``chunks``: list of [chunk id, size,
                                       compressed]) up to 100 chunks, else
                                       ``manifest_id`` and ``pages`` naming
                                       pages of 1000.
  ``M#<manifest_id>`` / ``<page:06d>``  a page of a large manifest (written
                                       before the version that names it, so
                                       a manifest is never seen half-made).
  ``I#<file_id>`` / ``S#<version:010d>`` S3's object metadata of a version.
  ``B#<bucket>`` / ``BUCKET``          a bucket: ``owner``, ``created_at``;
                                       in ``gsi1`` as ``BO#<owner>`` /
                                       ``<bucket>`` (a user's buckets).

``chunks``
  ``C#<chunk_id>`` / ``CHUNK``         a chunk: sizes, ``compressed``,
                                       ``state``, ``touched_at``,
                                       ``created_at``, ``refs`` (versions
                                       and session parts that use it) and
                                       ``replicas`` (map worker → stored at).
                                       In ``gsi1`` as ``GC`` /
                                       ``<touched_at>#<id>`` while ``refs``
                                       is 0 (the collector's candidates),
                                       and as ``DEL`` / ``<id>`` while
                                       ``state`` is deleting.
  ``W#<worker>`` / ``<chunk_id>``      a copy on a worker (chunks_on_worker,
                                       known_worker_ids); in ``gsi1`` as
                                       ``REP#<first hex digit of the id>`` /
                                       ``<chunk_id>#<worker>``: every copy in
                                       (chunk, worker) order, sixteen
                                       partitions walked in turn
                                       (replica_page). The chunk item's map
                                       is the truth: readers confirm on it.
  ``WORKERS`` / ``<worker>``           a worker that ever held a copy
                                       (known_worker_ids asks each).
  ``C#<chunk_id>`` / ``R#<worker>``    a replication intent; in ``gsi1`` as
                                       ``DUE`` / ``<next_attempt_at>#…``;
                                       known by a random ``task_id``.

``sessions``, ``accounts``, ``controller``: see their modules.

Rules
-----
- A version is published by one ``TransactWriteItems``: the file head's
  ``current_version`` moves from n to n+1 under the condition that it is n
  (or that the head does not exist), the by-id item follows, and the
  version item is put under the condition that it does not exist. Every
  transaction carries a ``ClientRequestToken``, so a retry after a conflict
  or a 5xx is not applied twice. One master's publishers of a name take
  turns, so only other masters make a transaction lose. Concurrent writers to one
  name lose the condition, read the head again and retry with backoff, so two uploads to
  one name get distinct, consecutive numbers. A large manifest is written
  in pages first and published by the version item that names it: the
  100-item and 4 MB limits of a transaction never bound a file's size.
- Chunks and the collector meet on the chunk item. Before publishing, a
  writer adds 1 to ``refs`` of each chunk it uses under the condition
  ``state = live`` (which fails once the collector claimed it: the upload
  gets ``Conflict(chunk_collected)``), and removes it from the ``GC`` index.
  The collector claims a chunk only under the condition ``refs = 0 AND
  state = live AND touched_at < grace``. A writer that fails after adding
  refs takes them back; one that dies in between leaves a chunk counted as
  referenced by nothing that uses it: a leak of its copies (nothing
  recounts references yet), never a loss.
  Removing a version (delete, retention) deletes its item first, then
  takes back its refs — again the order that can leak, never lose. The
  deleter whose ``DeleteItem`` returned the old item is the one that gives
  its refs back, so a prune and a delete racing never give back twice.
- Reads that must see the latest (a head, a version, a chunk's state) are
  strongly consistent; index queries are eventually consistent and only
  ever suggest work that a conditional write then confirms.
- Throttling (``ProvisionedThroughputExceeded``, ``ThrottlingException``,
  ``RequestLimitExceeded``) and transaction conflicts
  (``TransactionConflict``) are retried with jittered backoff and counted
  in ``echofs_dynamodb_retries_total``; every request is counted in
  ``echofs_dynamodb_requests_total`` by operation.
- No read answers are memoized: several masters share the tables, as on
  PostgreSQL.
"""
