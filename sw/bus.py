"""The one interface between host software and hardware.

``sw/`` talks to the machine only through :class:`HostBus`. The simulation backend
(``siov_sim.tb.pcie.host_bus``) implements it on cocotbext-pcie's root complex; a lab backend
(Linux VFIO/sysfs) can implement the same protocol without touching the drivers or the VDCM.

* ``mem`` / ``alloc``: host RAM as the CPU sees it (loads and stores are synchronous) and a page
  allocator for it. Tables, rings and buffers live here; device DMA lands in the same bytes.
* ``mmio_read`` / ``mmio_write``: CPU uncached accesses to a host physical address, i.e. a PCIe
  BAR (becomes MRd/MWr TLPs) or a platform device such as the IOMMU's register window.
* ``cfg_read`` / ``cfg_write``: PCI configuration space of a function (``bdf = bus<<8 | dev<<3 | fn``).
* ``alloc_irq`` / ``free_irq``: an MSI message (address, data) whose write by any device calls
  ``handler``; the analogue of an irq domain handing out vectors.
* ``runtime``: waiting (sleep, events) in whatever scheduler drives the simulation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from siov_sim.model.mem import HostMemory, PageAllocator


@dataclass(frozen=True, slots=True)
class MsiMessage:
    """An interrupt message: the device writes ``data`` (32 bits) to ``addr``."""

    addr: int
    data: int


IrqHandler = Callable[[MsiMessage], None]


class Event(Protocol):
    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self) -> Awaitable[None]: ...


T = TypeVar("T")


class Runtime(Protocol):
    """Scheduler services; cocotb and asyncio implementations exist (``tb/``, tests)."""

    def sleep(self, ns: float) -> Awaitable[None]: ...
    def event(self) -> Event: ...
    def now_ns(self) -> float: ...
    def gather(self, coros: Sequence[Coroutine[Any, Any, T]]) -> Awaitable[list[T]]:
        """Run ``coros`` concurrently; their results in order (the first exception propagates)."""
        ...

    def wait_for(self, event: Event, timeout_ns: float) -> Awaitable[bool]:
        """Sleep until ``event`` is set or ``timeout_ns`` passed; True if it was set (an interrupt
        handler's wake-up, as a driver blocked on its eventfd with a timeout)."""
        ...


class HostBus(Protocol):
    mem: HostMemory
    alloc: PageAllocator
    runtime: Runtime

    async def mmio_read(self, addr: int, length: int) -> bytes: ...
    async def mmio_write(self, addr: int, data: bytes) -> None: ...
    async def cfg_read(self, bdf: int, offset: int, length: int) -> bytes: ...
    async def cfg_write(self, bdf: int, offset: int, data: bytes) -> None: ...
    def alloc_irq(self, handler: IrqHandler) -> MsiMessage: ...
    def free_irq(self, msg: MsiMessage) -> None: ...


async def mmio_read32(bus: HostBus, addr: int) -> int:
    return int.from_bytes(await bus.mmio_read(addr, 4), "little")


async def mmio_read64(bus: HostBus, addr: int) -> int:
    return int.from_bytes(await bus.mmio_read(addr, 8), "little")


async def mmio_write32(bus: HostBus, addr: int, value: int) -> None:
    await bus.mmio_write(addr, (value & 0xFFFF_FFFF).to_bytes(4, "little"))


async def mmio_write64(bus: HostBus, addr: int, value: int) -> None:
    await bus.mmio_write(addr, (value & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little"))
