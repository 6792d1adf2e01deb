"""What the chaos benchmark runs: its scenarios, policies, faults and profiles.

A cell (:mod:`echofs.bench.cell`) is one scenario under one policy; a profile
says how long each phase lasts and how hard the workload
(:mod:`echofs.bench.workload`) pushes. The run itself is
:mod:`echofs.bench.chaos`.
"""

from __future__ import annotations

from dataclasses import dataclass

from echofs.bench.workload import WorkloadConfig
from echofs.core.consistency import Mode
from echofs.testing.cluster import FAST_ENV
from echofs.testing.faults import Faults

SCENARIOS = ("normal", "latency", "partition", "heavy", "flapping", "slow-disk", "master-kill",
             "worker-lost")
# The original's four, which the quick profile runs by default (the newer
# ones, each a cluster restart or a minute of flapping, do not fit its two
# minutes; ``--quick --scenarios ...`` runs them shortened).
ORIGINAL_SCENARIOS = SCENARIOS[:4]
# The scenarios whose measured window is the fault (a link cut or slowed,
# healed at its end); the others measure their whole load ("run").
FAULT_WINDOW = frozenset({"latency", "partition", "flapping", "master-kill"})
POLICIES = ("fixed-strong", "fixed-available", "adaptive")
# The controller's global override each policy sets; adaptive sets none.
OVERRIDE: dict[str, Mode | None] = {"fixed-strong": Mode.STRONG,
                                    "fixed-available": Mode.AVAILABLE, "adaptive": None}

WORKERS = 5
REPLICATION_FACTOR = 3
FAULTED = ("w4", "w5")  # the two workers the link faults hit
SLOW_WORKER = "w5"  # whose store the slow-disk scenario slows
SLOW_DISK_DELAY_MS = 200  # added to each chunk write on that store
LOST_WORKER = "w5"  # killed and wiped by the worker-lost scenario
LATENCY_FAULT = Faults(latency_ms=100, jitter_ms=25, stall_share=0.02, stall_ms=200,
                       reset_share=0.05)
PARTITION_FAULT = Faults(blackhole=True)

# The test cluster's short timeouts (failure noticed in about a second), but a
# worker is declared dead — its chunks re-homed elsewhere — only after the
# production default of 30 s: a partition of seconds is not a lost machine.
CLUSTER_ENV = {**FAST_ENV, "DEAD_AFTER": "30"}


@dataclass(frozen=True)
class Profile:
    name: str
    normal: float
    heavy: float
    warmup: float
    fault: float
    recovery: float
    cycles: int
    clients: int
    rate: float
    heavy_clients: int
    heavy_rate: float
    small_names: int
    large_names: int
    heavy_small_names: int
    heavy_large_names: int
    cluster_per: str  # cell | run
    # Longest wait for a heal to converge (or the cluster to settle).
    settle_timeout: float = 30.0
    # Flapping: the link of FAULTED is cut and healed every flap_period
    # seconds for flapping seconds.
    flapping: float = 30.0
    flap_period: float = 2.0
    slow_disk: float = 30.0  # the slow-disk scenario's load
    # Worker-lost: the load runs worker_lost seconds after the loss (the
    # loss comes after the warm-up).
    worker_lost: float = 30.0
    # The scenarios run when --scenarios is not given.
    scenarios: tuple[str, ...] = SCENARIOS

    def __post_init__(self) -> None:
        for name in ("normal", "heavy", "fault", "recovery", "rate", "heavy_rate", "flapping",
                     "flap_period", "slow_disk", "worker_lost"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive")
        if self.warmup < 0 or self.cycles < 1 or self.clients < 1 or self.heavy_clients < 1:
            raise ValueError("--warmup must be ≥ 0; --cycles and the client counts ≥ 1")


FULL = Profile("full", normal=30, heavy=30, warmup=6, fault=10, recovery=6, cycles=3,
               clients=4, rate=20, heavy_clients=8, heavy_rate=100, small_names=20,
               large_names=4, heavy_small_names=40, heavy_large_names=1, cluster_per="cell")
QUICK = Profile("quick", normal=2.5, heavy=2.5, warmup=1, fault=3, recovery=2, cycles=1,
                clients=3, rate=15, heavy_clients=6, heavy_rate=100, small_names=8,
                large_names=2, heavy_small_names=16, heavy_large_names=1, cluster_per="run",
                settle_timeout=15, flapping=4, flap_period=1, slow_disk=2.5, worker_lost=4,
                scenarios=ORIGINAL_SCENARIOS)


def workload_config(profile: Profile, scenario: str, seed: int) -> WorkloadConfig:
    if scenario == "heavy":
        return WorkloadConfig(clients=profile.heavy_clients, rate=profile.heavy_rate,
                              write_share=0.9, small_names=profile.heavy_small_names,
                              large_names=profile.heavy_large_names, seed=seed)
    return WorkloadConfig(clients=profile.clients, rate=profile.rate, write_share=0.5,
                          small_names=profile.small_names, large_names=profile.large_names,
                          seed=seed)


def scenario_faults(scenario: str) -> Faults | None:
    """The link fault a scenario puts on FAULTED, if any."""
    return {"latency": LATENCY_FAULT, "partition": PARTITION_FAULT,
            "flapping": PARTITION_FAULT, "master-kill": PARTITION_FAULT}.get(scenario)


def scenario_window(scenario: str) -> str:
    return "fault" if scenario in FAULT_WINDOW else "run"


def worker_env(scenario: str) -> dict[str, dict[str, str]]:
    """Settings a scenario gives single workers at start: only slow-disk's
    fault injection, on SLOW_WORKER (off everywhere else, and by default)."""
    if scenario == "slow-disk":
        return {SLOW_WORKER: {"FAULT_STORE_PUT_DELAY_MS": str(SLOW_DISK_DELAY_MS)}}
    return {}
