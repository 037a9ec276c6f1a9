"""Core-aware planning for on-device inference: `ProcessorCoreOptimizer`.

Per-core usage comes from psutil, core facts from `pytest_edge.machine.current_machine()` (so
a simulated device is seen), big.LITTLE from per-core maximum frequencies. A core without a
usage reading is unknown (NaN), never idle: a simulated device has no per-core usage of its
own (its `Machine` reports cores and frequencies, not load; psutil under the device view
repeats the host's overall load for every device core, and without the view reports the
host's cores, possibly fewer than the device has).

The CPU-bound plan is llama.cpp's: one inference process holding the model once, with as many
threads as performance cores. llama.cpp recommends ``--threads`` = the number of physical
cores (https://github.com/ggml-org/llama.cpp/blob/master/tools/main/README.md), and its
default, ``cpu_get_num_math()``, leaves out efficiency cores ("efficiency cores harm lockstep
threading") and hyperthreads
(https://github.com/ggml-org/llama.cpp/blob/master/common/common.cpp). N processes would each
load the weights and their own KV cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypedDict

import psutil

from pytest_edge.machine import Machine, current_machine

WORKLOAD_KINDS = ("cpu_bound", "io_bound", "memory_bound")


class WorkloadPlan(TypedDict):
    """A worker plan from `ProcessorCoreOptimizer.optimize_for_workload`."""

    workload_type: str
    num_workers: int
    threading_model: str  # "process" | "thread"
    threads_per_worker: int
    cpu_affinity: list[int]
    chunk_size: int
    memory_per_worker_mb: float
    reason: str


UsageReader = Callable[[float], list[float]]


def read_core_usage(interval: float) -> list[float]:
    """Per-core CPU usage in percent over `interval` seconds (psutil)."""
    return [float(p) for p in psutil.cpu_percent(interval=interval, percpu=True)]


def _cores(cores: Sequence[int]) -> str:
    return ", ".join(f"core_{c}" for c in cores)


class ProcessorCoreOptimizer:
    """Plans workers and inference threads from the machine's cores and their measured load.

    Core facts come from `machine` (default: `current_machine()`, so a simulated device
    answers); usage from `usage_reader` (default: psutil over `sample_interval` seconds; on a
    simulated machine the default reader measures the host, so every device core is unknown).
    A core counts as busy at or above `busy_percent`, idle below, unknown without a reading.
    Cores with a lower maximum frequency than the fastest are the LITTLE cluster.
    """

    def __init__(
        self,
        machine: Machine | None = None,
        *,
        usage_reader: UsageReader | None = None,
        sample_interval: float = 0.2,
        busy_percent: float = 80.0,
    ) -> None:
        self.machine = machine if machine is not None else current_machine()
        # The host's psutil says nothing about a simulated device's cores.
        self.usage_is_host = usage_reader is None and self.machine.simulated
        self._read_usage = usage_reader if usage_reader is not None else read_core_usage
        self.sample_interval = sample_interval
        self.busy_percent = busy_percent
        self.cpu_count = self.machine.cpu_count()
        self.usable_cpus = sorted(self.machine.usable_cpus())
        self.max_freq_mhz = self.machine.cpu_max_freq_mhz()
        self.last_usage: dict[str, float] | None = None
        self.host_mean_percent: float | None = None

    @property
    def heterogeneous(self) -> bool:
        """True when cores differ in maximum frequency (big.LITTLE)."""
        return len(set(self.max_freq_mhz.values())) > 1

    @property
    def big_cores(self) -> list[int]:
        """Usable cores at the highest maximum frequency (all usable cores if unknown)."""
        if not self.heterogeneous:
            return list(self.usable_cpus)
        top = max(self.max_freq_mhz.values())
        return [c for c in self.usable_cpus if self.max_freq_mhz.get(c) == top]

    @property
    def little_cores(self) -> list[int]:
        big = set(self.big_cores)
        return [c for c in self.usable_cpus if c not in big]

    def monitor_core_usage(self) -> dict[str, float]:
        """Measure usage per core, ``{"core_<n>": percent}``, one entry per machine core;
        NaN where the core has no reading (unknown)."""
        readings = self._read_usage(self.sample_interval)
        if self.usage_is_host:
            self.host_mean_percent = sum(readings) / len(readings) if readings else None
            readings = []
        usage = {
            f"core_{n}": readings[n] if n < len(readings) else math.nan
            for n in range(self.cpu_count)
        }
        self.last_usage = usage
        return usage

    def _usage(self) -> dict[str, float]:
        return self.last_usage if self.last_usage is not None else self.monitor_core_usage()

    def _reading(self, core: int) -> float:
        return self._usage().get(f"core_{core}", math.nan)

    def idle_cores(self, cores: Sequence[int] | None = None) -> list[int]:
        """Usable cores (or those given) measured below `busy_percent`; unknown ones excluded."""
        pool = self.usable_cpus if cores is None else list(cores)
        return [c for c in pool if self._reading(c) < self.busy_percent]

    def busy_cores(self, cores: Sequence[int] | None = None) -> list[int]:
        """Usable cores (or those given) measured at or above `busy_percent`."""
        pool = self.usable_cpus if cores is None else list(cores)
        return [c for c in pool if self._reading(c) >= self.busy_percent]

    def unmeasured_cores(self, cores: Sequence[int] | None = None) -> list[int]:
        """Usable cores (or those given) without a usage reading: their load is unknown."""
        pool = self.usable_cpus if cores is None else list(cores)
        return [c for c in pool if math.isnan(self._reading(c))]

    def inference_threads(self) -> list[int]:
        """Cores for llama.cpp's threads: the big cores not measured busy (unknown ones
        included, as llama.cpp's default would), or one big core if all are busy."""
        cores = [c for c in self.big_cores if c not in self.busy_cores(self.big_cores)]
        return cores or self.big_cores[:1]

    def get_optimization_recommendations(self) -> list[str]:
        """Advice derived from the measured usage and the core topology."""
        usage = self._usage()
        measured = [pct for pct in usage.values() if not math.isnan(pct)]
        advice: list[str] = []
        if len(self.usable_cpus) < self.cpu_count:
            advice.append(
                f"Only {len(self.usable_cpus)} of {self.cpu_count} cores are usable by this "
                "process (affinity or container limit): size pools to the usable cores."
            )
        if self.heterogeneous:
            advice.append(
                f"big.LITTLE CPU: big cores {self.big_cores} "
                f"({max(self.max_freq_mhz.values()):.0f} MHz), little cores {self.little_cores}"
                f" ({min(self.max_freq_mhz.values()):.0f} MHz): pin inference threads to the "
                "big cores, background work to the little ones."
            )
        elif not self.max_freq_mhz:
            advice.append("Per-core frequencies are not exposed: treating all cores as equal.")
        advice.append(self._inference_advice())
        advice.extend(self._load_advice(measured))
        return advice

    def _inference_advice(self) -> str:
        threads = self.inference_threads()
        return (
            f"llama.cpp: run one inference process with --threads {len(threads)} (cores "
            f"{threads}), loading the model once; more processes would each hold the weights "
            "and a KV cache, and more threads than performance cores slow the lockstep matmuls."
        )

    def _load_advice(self, measured: list[float]) -> list[str]:
        advice: list[str] = []
        unknown = self.unmeasured_cores()
        if self.usage_is_host:
            host = (
                "" if self.host_mean_percent is None else f" (host {self.host_mean_percent:.0f}%)"
            )
            advice.append(
                f"Simulated device: per-core load is unknown{host}; the host's usage is not "
                "the device's, so no core is counted idle or busy."
            )
        elif unknown:
            advice.append(
                f"{_cores(unknown)}: no usage reading: unknown, not counted as idle or busy."
            )
        busy = self.busy_cores()
        if busy:
            advice.append(
                f"{_cores(busy)} at or above {self.busy_percent:.0f}%: leave them out of "
                "CPU-bound pools, or expect contention."
            )
        if not measured:
            return advice
        mean = sum(measured) / len(measured)
        of = f" over {len(measured)} measured cores" if unknown else ""
        if mean >= self.busy_percent:
            advice.append(
                f"Average load {mean:.0f}%{of}: the machine is saturated; queue work instead of "
                "adding threads."
            )
        elif mean < 25.0:
            advice.append(
                f"Average load {mean:.0f}%{of}: {len(self.idle_cores())} idle cores available "
                "for parallel inference or embedding work."
            )
        else:
            advice.append(f"Average load {mean:.0f}%{of}: moderate; keep one core free for the OS.")
        return advice

    def optimize_for_workload(
        self, workload_type: str, data_size: int, memory_mb: float, *, shared_model: bool = True
    ) -> WorkloadPlan:
        """A worker plan for `data_size` items within `memory_mb` megabytes.

        cpu_bound with `shared_model` (default; model inference, llama.cpp-style): one process
        with `inference_threads` threads, holding all of `memory_mb` (the model is loaded
        once). cpu_bound without it (independent CPU-bound Python work): one process per idle
        big core, since the GIL serialises CPU work in threads; memory split between them.
        io_bound: threads, up to 4 per usable core, since they mostly wait.
        memory_bound: at most 2 workers, because memory bandwidth, not cores, is the limit on
        small boards (a heuristic, not a measurement).
        """
        if workload_type not in WORKLOAD_KINDS:
            raise ValueError(
                f"unknown workload kind {workload_type!r}; allowed: {', '.join(WORKLOAD_KINDS)}"
            )
        if isinstance(data_size, bool) or not isinstance(data_size, int) or data_size < 0:
            raise ValueError(f"data_size must be an integer >= 0, got {data_size!r}")
        if not memory_mb > 0:
            raise ValueError(f"memory_mb must be > 0, got {memory_mb!r}")
        items = max(1, data_size)
        if workload_type == "cpu_bound" and shared_model:
            return self._inference_plan(items, memory_mb)
        busy = f"no candidate core measured below {self.busy_percent:.0f}%: one worker"
        threads = 1
        if workload_type == "cpu_bound":
            idle = self.idle_cores(self.big_cores)
            cores = idle or self.big_cores[:1]
            workers, model = min(len(cores), items), "process"
            reason = (
                f"{len(idle)} idle big cores; processes, since the GIL serialises CPU work "
                "in threads"
                if idle
                else busy
            )
        elif workload_type == "io_bound":
            cores = list(self.usable_cpus)
            workers, model = min(4 * len(cores), items, 32), "thread"
            reason = f"I/O waits overlap: 4 threads per usable core over {len(cores)} cores"
        else:
            idle = self.idle_cores()
            cores = idle[:2] or self.usable_cpus[:1]
            workers, model = min(len(cores), items), "thread"
            reason = (
                "memory bandwidth bound: more than 2 workers rarely helps (heuristic)"
                if idle
                else busy
            )
        workers = max(1, workers)
        return {
            "workload_type": workload_type,
            "num_workers": workers,
            "threading_model": model,
            "threads_per_worker": threads,
            "cpu_affinity": sorted(cores)[:workers] if workload_type != "io_bound" else cores,
            "chunk_size": -(-items // workers),
            "memory_per_worker_mb": memory_mb / workers,
            "reason": reason,
        }

    def _inference_plan(self, items: int, memory_mb: float) -> WorkloadPlan:
        threads = self.inference_threads()
        unknown = self.unmeasured_cores(threads)
        measured = f"; {len(unknown)} of them unmeasured (load unknown)" if unknown else ""
        return {
            "workload_type": "cpu_bound",
            "num_workers": 1,
            "threading_model": "process",
            "threads_per_worker": len(threads),
            "cpu_affinity": threads,
            "chunk_size": items,
            "memory_per_worker_mb": memory_mb,
            "reason": (
                f"model inference: one process holding the model once, {len(threads)} threads "
                f"on the performance cores not measured busy{measured} (llama.cpp --threads)"
            ),
        }
