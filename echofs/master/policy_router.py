"""Policies looked up by consistency mode, registered where they are defined.

Modeled on Swift's ``ObjectControllerRouter.register(REPL_POLICY)``: each
policy class names the modes it serves with a decorator, and callers ask the
router for a mode's policy instead of branching on the mode themselves. A
mode registered twice is a programming error, caught at import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from echofs.core.consistency import Mode

_Policy = TypeVar("_Policy")


class ModeRouter(Generic[_Policy]):
    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._by_mode: dict[Mode, _Policy] = {}

    def register(self, *modes: Mode) -> Callable[[type[_Policy]], type[_Policy]]:
        """Class decorator: one (stateless) instance serves every mode named."""
        def add(policy: type[_Policy]) -> type[_Policy]:
            instance = policy()
            for mode in modes:
                if mode in self._by_mode:
                    raise ValueError(f"{self._kind} policy for {mode} registered twice")
                self._by_mode[mode] = instance
            return policy
        return add

    def __getitem__(self, mode: Mode) -> _Policy:
        return self._by_mode[mode]

    def modes(self) -> set[Mode]:
        return set(self._by_mode)
