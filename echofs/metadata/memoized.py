"""How the repository files its read answers in the read memo (see read_memo).

Two things live here, so that readers and writers cannot disagree on them:

- the *key* of an answer: one function per memoized method, built from its
  signature, used both by the read decorator and by a commit writing its
  answers through. A call with keyword arguments and the same call with
  positional ones (or with a default left out) map to one key;
- the *tags* an answer is filed under, and that writes invalidate: a file by
  id, a file by (owner, name), and a chunk (every version using it).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from echofs.core.errors import NotFound
from echofs.core.manifest import FileRecord, VersionRecord
from echofs.metadata.read_memo import MAX_CHUNKS, ReadMemo

_P = ParamSpec("_P")
_T = TypeVar("_T")

Tag = Hashable
MemoKey = tuple[Hashable, ...]


def file_tag(file_id: str) -> Tag:
    return ("file", file_id)


def path_tag(owner: str, path: str) -> Tag:
    return ("path", owner, path)


def chunk_tags(chunk_ids: Iterable[str]) -> tuple[Tag, ...]:
    """A copy of a chunk added or removed changes every version using it."""
    return tuple(("chunk", chunk_id) for chunk_id in dict.fromkeys(chunk_ids))


def record_tags(value: FileRecord | VersionRecord) -> tuple[Tag, ...]:
    """The tags a memoized answer is filed under."""
    if isinstance(value, FileRecord):
        return (file_tag(value.file_id), path_tag(value.owner, value.path))
    if isinstance(value, VersionRecord):
        return (file_tag(value.file_id), *chunk_tags(c.chunk_id for c in value.chunks))
    raise TypeError(f"cannot memoize a {type(value).__name__}")


def memorable(value: FileRecord | VersionRecord) -> bool:
    """Whether an answer is small enough to keep (huge manifests are not)."""
    return not isinstance(value, VersionRecord) or len(value.chunks) <= MAX_CHUNKS


@dataclass(frozen=True, slots=True)
class _Missing:
    """A memoized "no such file" answer."""

    message: str


def key_function(method: Callable[..., Any]) -> Callable[..., MemoKey]:
    """The memo key of calls to ``method`` (a method: ``self`` is not part of
    the key): its name and every argument in signature order, defaults
    applied, however the call spelled them."""
    signature = inspect.signature(method)
    parameters = list(signature.parameters.values())[1:]
    unbound = signature.replace(parameters=parameters)
    name = method.__name__
    arity = len(parameters)

    def key(*args: Any, **kwargs: Any) -> MemoKey:
        if not kwargs and len(args) == arity:
            return (name, *args)  # the hot path: every argument, in order
        bound = unbound.bind(*args, **kwargs)
        bound.apply_defaults()
        return (name, *bound.arguments.values())

    return key


class _Memoizing(Protocol):
    memo: ReadMemo | None


def memoized(
    missing_tags: Callable[..., tuple[Tag, ...]],
) -> Callable[[Callable[_P, Awaitable[_T]]], Callable[_P, Awaitable[_T]]]:
    """Serve a read method's answer from the repository's memo when it has
    one (this process is the store's only writer), keep new answers there.
    For methods with hashable arguments that return frozen records;
    ``missing_tags`` files a NotFound answer, given the call's arguments in
    signature order (defaults applied)."""

    def decorate(method: Callable[_P, Awaitable[_T]]) -> Callable[_P, Awaitable[_T]]:
        key_of = key_function(method)

        @functools.wraps(method)
        async def run(self: _Memoizing, *args: Any, **kwargs: Any) -> Any:
            memo = self.memo
            if memo is None:
                return await method(self, *args, **kwargs)  # type: ignore[arg-type]
            key = key_of(*args, **kwargs)
            found, value = memo.get(key)
            if found:
                if isinstance(value, _Missing):
                    raise NotFound(value.message)
                return value
            began = memo.generation
            try:
                value = await method(self, *args, **kwargs)  # type: ignore[arg-type]
            except NotFound as exc:
                memo.put(key, began, _Missing(exc.message), missing_tags(*key[1:]))
                raise
            if memorable(value):
                memo.put(key, began, value, record_tags(value))
            return value

        run.memo_key = key_of  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate


def memo_key(method: Callable[..., Any], *args: Any, **kwargs: Any) -> MemoKey:
    """The key under which ``method`` (a ``@memoized`` method) files the
    answer to this call: what a write-through must use to be found."""
    return method.memo_key(*args, **kwargs)  # type: ignore[attr-defined, no-any-return]


def file_id_tags(file_id: str, *_: object) -> tuple[Tag, ...]:
    return (file_tag(file_id),)


def path_tags(owner: str, path: str) -> tuple[Tag, ...]:
    return (path_tag(owner, path),)
