"""A VM that can move: guest RAM with a movable backing, a CPU dirty log and pausable vCPUs.

What KVM and QEMU give a VM that the migration driver needs:

* **vCPUs that stop.** The guest's code (its driver and workload) runs as tasks; every await
  point of the guest goes through a gate (:meth:`MigratableVm.vcpu_gate`): its timer sleeps
  (:class:`GuestRuntime`) and its stores to the device's portal page (:class:`EptMapping`).
  :meth:`MigratableVm.pause` returns once every running guest task sits at a gate, i.e. the
  vCPUs are stopped between two instructions; :meth:`resume` lets them go on.
* **A CPU dirty log** (``KVM_GET_DIRTY_LOG``): while logging, every guest store into RAM marks
  its page; :meth:`take_cpu_dirty` returns and clears the set. The device's DMA writes are not
  in it: they are logged by the IOMMU (``VFIO_IOMMU_DIRTY_PAGES``).
* **RAM that moves.** Guest-physical addresses stay; the backing (a VMM process mapping on one
  host) is replaced by the destination's at switch-over (:meth:`rebase`). The guest's page
  allocator and everything in RAM (rings, buffers, completion records) move with it.
* **A device view that moves** (:class:`EptMapping`): the guest's portal page mapping is an EPT
  entry onto the VMM's mmap of the VDEV's BAR2; the destination VMM points it at the new VDEV.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from siov_sim.model.mem import PAGE_SIZE
from siov_sim.sw.bus import Event, HostBus, Runtime
from siov_sim.sw.guest.memory import GuestVm, UserProcess
from siov_sim.sw.vfio.device_ops import MmioMapping

T = TypeVar("T")

GATE_POLL_NS = 100.0


class MigratableVm(GuestVm):
    """:class:`GuestVm` with pausable vCPUs, a CPU dirty log and a backing that can move."""

    def __init__(self, bus: HostBus, name: str, ram_size: int = 1 << 20) -> None:
        super().__init__(bus, name, ram_size, firmware=min(0x10_0000, ram_size // 4))
        self.runtime = bus.runtime
        self.paused = False
        self._tasks = 0  # guest tasks running (entered with vcpu_enter)
        self._parked = 0  # of those, how many sit at a gate while paused
        self.logging = False
        self._cpu_dirty: set[int] = set()
        self.host_name = "?"

    # ---- vCPUs -----------------------------------------------------------------------------------
    def vcpu_enter(self) -> None:
        """A guest task starts (a vCPU runs the guest's driver / workload)."""
        self._tasks += 1

    def vcpu_exit(self) -> None:
        self._tasks -= 1

    async def vcpu_gate(self) -> None:
        """Every await point of the guest passes here: while paused, the vCPU waits."""
        if not self.paused:
            return
        self._parked += 1
        try:
            while self.paused:
                await self.runtime.sleep(GATE_POLL_NS)
        finally:
            self._parked -= 1

    async def pause(self) -> None:
        """Stop the vCPUs: returns when every guest task is parked at a gate."""
        self.paused = True
        while self._parked < self._tasks:
            await self.runtime.sleep(GATE_POLL_NS / 4)

    def resume(self) -> None:
        self.paused = False

    # ---- dirty log -------------------------------------------------------------------------------
    def write(self, gpa: int, data: bytes) -> None:
        if self.logging and data:
            self._cpu_dirty.update(range(gpa & ~(PAGE_SIZE - 1), gpa + len(data), PAGE_SIZE))
        super().write(gpa, data)

    def start_dirty_log(self) -> None:
        self.logging = True
        self._cpu_dirty.clear()

    def stop_dirty_log(self) -> None:
        self.logging = False
        self._cpu_dirty.clear()

    def requeue_dirty(self, pages: set[int]) -> None:
        """Pages found dirty but not copied yet (they go with the next round)."""
        self._cpu_dirty |= pages

    def take_cpu_dirty(self) -> set[int]:
        out, self._cpu_dirty = self._cpu_dirty, set()
        return out

    # ---- backing -----------------------------------------------------------------------------------
    def rebase(self, vmm: UserProcess, ram_va: int, runtime: Runtime, host_name: str) -> None:
        """Switch-over: guest RAM is now ``vmm``'s mapping at ``ram_va`` on another host."""
        if vmm.region_size(ram_va) < self.ram_size:
            raise ValueError("destination mapping smaller than guest RAM")
        self.vmm, self.ram_va, self.runtime, self.host_name = vmm, ram_va, runtime, host_name


class GuestRuntime:
    """The guest's view of time: the host runtime, with every wait passing the vCPU gate."""

    def __init__(self, vm: MigratableVm) -> None:
        self.vm = vm

    async def sleep(self, ns: float) -> None:
        await self.vm.runtime.sleep(ns)
        await self.vm.vcpu_gate()

    def event(self) -> Event:
        return self.vm.runtime.event()

    def now_ns(self) -> float:
        return self.vm.runtime.now_ns()

    async def gather(self, coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
        return await self.vm.runtime.gather(coros)

    async def wait_for(self, event: Event, timeout_ns: float) -> bool:
        got = await self.vm.runtime.wait_for(event, timeout_ns)
        await self.vm.vcpu_gate()
        return got


class EptMapping(MmioMapping):
    """The guest's mapping of one portal page: an EPT entry onto the VMM's mmap of the VDEV.

    Accesses pass the vCPU gate, then go to :attr:`target`, which the destination VMM points at
    its own VDEV's portal page at switch-over (:meth:`retarget`)."""

    def __init__(self, vm: MigratableVm, target: MmioMapping) -> None:
        super().__init__(target.bus, target.hpa, target.size)
        self.vm = vm
        self.target = target

    def retarget(self, target: MmioMapping) -> None:
        self.target = target
        self.bus, self.hpa, self.size = target.bus, target.hpa, target.size

    async def write32(self, off: int, value: int) -> None:
        await self.vm.vcpu_gate()
        await self.target.write32(off, value)

    async def write64(self, off: int, value: int) -> None:
        await self.vm.vcpu_gate()
        await self.target.write64(off, value)

    async def read32(self, off: int) -> int:
        await self.vm.vcpu_gate()
        return await self.target.read32(off)

    async def read64(self, off: int) -> int:
        await self.vm.vcpu_gate()
        return await self.target.read64(off)
