"""Numbers as the chaos report writes them, shared by the goals
(:mod:`echofs.bench.goals`), the Markdown (:mod:`echofs.bench.report`) and the
progress lines, so one figure reads the same everywhere it appears."""

from __future__ import annotations

from typing import Any


def measured_cells(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The cells that ran, by (scenario, policy); a cell that failed to run
    has an ``error`` and no figures."""
    return {(c["scenario"], c["policy"]): c for c in results if "error" not in c}


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}%"


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.2f} s"


def convergence(cell: dict[str, Any], value: float | None) -> str:
    """A convergence figure; a heal that never converged reads as such."""
    return f"> {cell['convergence_wait_s']:g} s" if value is None else seconds(value)
