"""Which versions of a file to keep."""

from __future__ import annotations


def versions_to_prune(versions: list[int], keep: int) -> list[int]:
    """Version numbers beyond the newest ``keep`` (oldest first)."""
    if keep < 1:
        raise ValueError("at least one version must be kept")
    ordered = sorted(versions)
    return ordered[: max(0, len(ordered) - keep)]
