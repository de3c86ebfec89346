"""``HostBus`` (``siov_sim.sw.bus``) implemented on :class:`IommuRootComplex` under cocotb.

* ``mem`` / ``alloc``: the RC's :class:`HostMemory` and a page allocator over host RAM;
* ``mmio_read`` / ``mmio_write``: the IOMMU window (``rc.iommu_base``, 4 KiB) goes straight to the
  model's registers (naturally aligned 4/8-byte pieces); everything else through
  ``rc.mem_read/mem_write`` (BARs become MRd/MWr TLPs, RAM is accessed directly), or, in the
  fast link mode, through ``rc.mmio_bypass`` for the addresses it claims (the same TLPs, handed
  to the endpoint without the root complex's switch and bridge tasks);
* ``cfg_read`` / ``cfg_write``: ``rc.config_read/config_write``;
* ``alloc_irq`` / ``free_irq``: the RC's :class:`InterruptController` (MSI window 0xFEEx_xxxx);
* ``runtime``: cocotb ``Timer`` and ``Event``.

Wiring (inside a cocotb test)::

    rc = IommuRootComplex(HostMemory(0, 0x8000_0000))   # RAM below the RC's 2 GiB MSI region
    env = Env(dut, rc=rc)                               # siov_sim.tb.env: RC -> root port -> EP
    await env.start()                                   # reset + enumerate
    bus = RcHostBus(rc)                                 # the HostBus every sw/ driver takes
    iommu = IommuDriver(bus)                            # siov_sim.sw.iommu
    await iommu.bring_up()
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import cocotb
from cocotb.triggers import Event, First, Timer
from cocotb.utils import get_sim_time
from cocotbext.pcie.core.utils import PcieId

from siov_sim.model.mem import PageAllocator
from siov_sim.sw.bus import HostBus, IrqHandler, MsiMessage, Runtime
from siov_sim.tb.pcie.iommu_rc import IOMMU_SIZE, LOW_RAM_END, IommuRootComplex

_T = TypeVar("_T")
DEFAULT_ALLOC_BASE = 0x0010_0000  # keep the first MiB free (legacy, like a PC)


class CocotbEvent:
    """``siov_sim.sw.bus.Event`` on a cocotb ``Event``."""

    def __init__(self) -> None:
        self._ev = Event()

    def set(self) -> None:
        self._ev.set()

    def clear(self) -> None:
        self._ev.clear()

    def is_set(self) -> bool:
        return bool(self._ev.is_set())

    async def wait(self) -> None:
        await self._ev.wait()


class CocotbRuntime:
    """``Runtime`` on cocotb's scheduler."""

    async def sleep(self, ns: float) -> None:
        await Timer(ns, unit="ns")

    def event(self) -> CocotbEvent:
        return CocotbEvent()

    def now_ns(self) -> float:
        return float(get_sim_time(unit="ns"))

    async def gather(self, coros: Sequence[Coroutine[Any, Any, _T]]) -> list[_T]:
        tasks = [cocotb.start_soon(c) for c in coros]
        return [await t for t in tasks]

    async def wait_for(self, event: CocotbEvent, timeout_ns: float) -> bool:  # type: ignore[override]
        if event.is_set():
            return True
        if timeout_ns > 0:
            await First(event._ev.wait(), Timer(round(timeout_ns, 3), unit="ns"))
        return event.is_set()


class RcHostBus:
    """The simulation backend of ``HostBus``."""

    def __init__(self, rc: IommuRootComplex, alloc: PageAllocator | None = None) -> None:
        self.rc = rc
        self.mem = rc.host_mem
        if alloc is None:
            hm = rc.host_mem
            end = min(hm.base + hm.size, LOW_RAM_END)
            base = max(hm.base, DEFAULT_ALLOC_BASE)
            alloc = PageAllocator(base, (end - base) & ~0xFFF)
        self.alloc = alloc
        self.runtime: Runtime = CocotbRuntime()
        self._irq_msgs: set[tuple[int, int]] = set()

    def _iommu_off(self, addr: int, length: int) -> int | None:
        off = addr - self.rc.iommu_base
        if 0 <= off < IOMMU_SIZE:
            return off if off + length <= IOMMU_SIZE else None
        return None

    async def mmio_read(self, addr: int, length: int) -> bytes:
        off = self._iommu_off(addr, length)
        if off is None:
            bp = self.rc.mmio_bypass
            if bp is not None and bp.claims(addr, length):
                return bytes(await bp.mmio_read(addr, length))
            return bytes(await self.rc.mem_read(addr, length))
        out = bytearray()
        while length:
            n = 8 if length >= 8 and not off & 7 else 4 if length >= 4 and not off & 3 else 1
            out += self.rc.iommu.mmio_read(off, n).to_bytes(n, "little")
            off += n
            length -= n
        return bytes(out)

    async def mmio_write(self, addr: int, data: bytes) -> None:
        off = self._iommu_off(addr, len(data))
        if off is None:
            bp = self.rc.mmio_bypass
            if bp is not None and bp.claims(addr, len(data)):
                await bp.mmio_write(addr, data)
            else:
                await self.rc.mem_write(addr, data)
            return
        pos = 0
        while pos < len(data):
            left = len(data) - pos
            n = 8 if left >= 8 and not off & 7 else 4 if left >= 4 and not off & 3 else 1
            self.rc.iommu.mmio_write(off, n, int.from_bytes(data[pos : pos + n], "little"))
            off += n
            pos += n

    async def cfg_read(self, bdf: int, offset: int, length: int) -> bytes:
        return bytes(await self.rc.config_read(PcieId.from_int(bdf), offset, length))

    async def cfg_write(self, bdf: int, offset: int, data: bytes) -> None:
        await self.rc.config_write(PcieId.from_int(bdf), offset, data)

    def alloc_irq(self, handler: IrqHandler) -> MsiMessage:
        def dispatch(addr: int, data: int) -> None:
            handler(MsiMessage(addr, data))

        addr, data = self.rc.irq.alloc(dispatch)
        self._irq_msgs.add((addr, data))
        return MsiMessage(addr, data)

    def free_irq(self, msg: MsiMessage) -> None:
        self._irq_msgs.discard((msg.addr, msg.data))
        self.rc.irq.free(msg.addr, msg.data)


def as_host_bus(rc: IommuRootComplex, alloc: PageAllocator | None = None) -> HostBus:
    """An :class:`RcHostBus` typed as the ``HostBus`` protocol (mypy checks the conformance here)."""
    return RcHostBus(rc, alloc)
