"""Metadata: SQLAlchemy models and the repository, the only place SQL lives.

The parts, each a module:

- ``repository``: ``MetadataRepository``, the one public object, made of
- ``transactions``: the base the others stand on: sessions, the SQLite
  writer lock, relaxed commits, PostgreSQL retries, and the read memo each
  write states its changes to;
- ``sql`` and ``sqlite_writer``: the hot statements (claims, commits, a file
  and its manifest, replication bookkeeping) as plain SQL both databases
  accept, and, on a SQLite file, the connection that runs them on the loop
  with only the fsync in a thread;
- ``files``: files and versions as readers see them (find, get, list, delete);
- ``commits``: the group commit that makes finished uploads new versions;
- ``chunks``: claims, touches and where copies live;
- ``replication_queue``: durable intents to copy a chunk to a worker;
- ``collection``: garbage collection's claims on unreferenced chunks;
- ``memoized`` and ``read_memo``: the answers a sole writer keeps, their keys
  and tags; ``records``: the values the repository takes and gives;
- ``users`` and ``consistency``: accounts and the controller's state, on the
  same database object (its public ``reading``/``writing_unmemoized``);
- ``models``, ``database``, ``ownership``: schema, connections, the
  sole-master lock.

Concurrency rules, written once for SQLite and PostgreSQL:

- A new version is created in one transaction that locks the file's row
  (``SELECT ... FOR UPDATE``; SQLite serialises writers anyway), so two
  uploads to the same name get distinct, ordered version numbers.
- Chunks and the collector meet on the ``chunks`` row: an upload touches every
  chunk it uses (``touched_at``) and commits only if each is still ``live``;
  the collector claims a chunk (``state='deleting'``) only if nothing
  references it and nobody touched it within the grace period. Both are row
  updates, so on PostgreSQL one waits for the other and re-checks.

SQLite allows one writer at a time; an in-process lock queues our writers so
they never meet SQLITE_BUSY. PostgreSQL runs writers at once, from any number
of masters, and relies on row locks: transactions that lock several chunk rows
lock them in chunk-id order (``Transactions._lock_chunks``) so they cannot
deadlock each other, and the rare deadlock or serialization failure left
(PostgreSQL picks a victim) is retried as a whole by ``@retried``: every write
method is one transaction, so running it again is safe.
"""
