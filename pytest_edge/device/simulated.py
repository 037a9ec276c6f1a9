"""`SimulatedMachine`: a `Machine` that answers as a device profile says.

Memory available = device total - OS reserve - what this process grew by since the machine
was created (the start of the test) - injected pressure. So the figure moves as the test
allocates, like on the device, while the device's total stays fixed.
"""

from __future__ import annotations

from pytest_edge.device import probe
from pytest_edge.machine import MIB, Accelerator, InjectedPressure, MemoryReading
from pytest_edge.profiles.model import DeviceProfile


class SimulatedMachine(InjectedPressure):
    """The simulated device; install it with `pytest_edge.use_machine` (the plugin does)."""

    simulated = True

    def __init__(self, profile: DeviceProfile, baseline_rss: int | None = None) -> None:
        super().__init__()
        self._profile = profile
        self.baseline_rss = probe.rss_bytes() if baseline_rss is None else baseline_rss

    @property
    def name(self) -> str:
        return f"{self._profile.name} (simulated)"

    @property
    def profile(self) -> DeviceProfile:
        return self._profile

    def rebase(self) -> None:
        """Count growth from now on."""
        self.baseline_rss = probe.rss_bytes()

    def reset(self) -> None:
        """A fresh start for the next test: growth counted from now, no injected pressure."""
        self.rebase()
        self.clear_pressure()

    # -- Machine protocol ------------------------------------------------------------------------

    def growth_bytes(self) -> int:
        return max(0, probe.rss_bytes() - self.baseline_rss)

    def memory(self) -> MemoryReading:
        profile = self._profile
        total = profile.memory_mb * MIB
        usable = profile.usable_memory_mb * MIB
        available = max(0, usable - self.growth_bytes() - self.pressure_bytes)
        swap = (profile.swap_mb or 0) * MIB
        return MemoryReading(
            total_bytes=total,
            available_bytes=available,
            swap_total_bytes=swap,
            swap_free_bytes=swap,
            bounded_by="simulated",
        )

    def cpu_count(self) -> int:
        return self._profile.cpu_cores

    def usable_cpus(self) -> frozenset[int]:
        return frozenset(range(self._profile.cpu_cores))

    def cpu_max_freq_mhz(self) -> dict[int, float]:
        mhz = self._profile.cpu_max_mhz
        return {} if mhz is None else dict.fromkeys(range(self._profile.cpu_cores), mhz)

    def accelerator(self) -> Accelerator:
        profile = self._profile
        evidence = f"simulated profile {profile.name}"
        gpu = profile.gpu
        if gpu is None:
            kind = "integrated" if profile.uma else "none"
            return Accelerator(kind, False, profile.uma, f"{evidence}: no usable GPU")
        if "apple" in gpu.lower():
            kind = "apple-silicon"
        elif "nvidia" in gpu.lower() and profile.uma:
            kind = "tegra"
        else:
            kind = "integrated" if profile.uma else "discrete"
        return Accelerator(kind, True, profile.uma, f"{evidence}: {gpu}")
