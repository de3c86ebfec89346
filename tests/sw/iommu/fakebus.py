"""A HostBus over the IOMMU model without a simulator (synchronous fake runtime)."""

from __future__ import annotations

from collections.abc import Callable

from siov_sim.model.iommu import Caps, Fault, Translation, VtdIommu
from siov_sim.model.irq import InterruptController, is_msi_address
from siov_sim.model.mem import HostMemory, PageAllocator
from siov_sim.sw.bus import IrqHandler, MsiMessage
from siov_sim.sw.iommu.driver import IOMMU_BASE


class _Event:
    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        if not self._set:
            raise RuntimeError("fake runtime cannot block")


class FakeRuntime:
    def __init__(self) -> None:
        self.t = 0.0

    async def sleep(self, ns: float) -> None:
        self.t += ns

    def event(self) -> _Event:
        return _Event()

    def now_ns(self) -> float:
        return self.t


class FakeBus:
    """mem/alloc/mmio/irq of a host with one IOMMU at IOMMU_BASE; ``dma()`` plays the device side."""

    def __init__(self, caps: Caps | None = None, caching: bool = True) -> None:
        self.mem = HostMemory(0, 1 << 32)
        self.alloc = PageAllocator(0x10_0000, 0x4000_0000)
        self.irq = InterruptController()
        self.runtime = FakeRuntime()
        self.iommu = VtdIommu(self.mem, caps, msi_sink=self.msi_write, caching=caching)
        self.mmio_log: list[tuple[str, int, int]] = []

    def msi_write(self, addr: int, data: int) -> None:
        if is_msi_address(addr):
            self.irq.deliver(addr, data)
        else:
            self.mem.write_u32(addr, data)

    def _iommu_off(self, addr: int, length: int) -> int | None:
        off = addr - IOMMU_BASE
        return off if off >= 0 and off + length <= 0x1000 else None

    async def mmio_read(self, addr: int, length: int) -> bytes:
        off = self._iommu_off(addr, length)
        if off is None:
            return bytes(length)
        return self.iommu.mmio_read(off, length).to_bytes(length, "little")

    async def mmio_write(self, addr: int, data: bytes) -> None:
        off = self._iommu_off(addr, len(data))
        if off is not None:
            self.mmio_log.append(("w", off, int.from_bytes(data, "little")))
            self.iommu.mmio_write(off, len(data), int.from_bytes(data, "little"))

    async def cfg_read(self, bdf: int, offset: int, length: int) -> bytes:
        return bytes(length)

    async def cfg_write(self, bdf: int, offset: int, data: bytes) -> None:
        return None

    def alloc_irq(self, handler: IrqHandler) -> MsiMessage:
        wrap: Callable[[int, int], None] = lambda a, d: handler(MsiMessage(a, d))  # noqa: E731
        addr, data = self.irq.alloc(wrap)
        return MsiMessage(addr, data)

    def free_irq(self, msg: MsiMessage) -> None:
        self.irq.free(msg.addr, msg.data)

    # device side
    def dma_write(self, sid: int, pasid: int | None, addr: int, data: bytes, pmr: bool = False) -> Fault | None:
        t = self.iommu.translate(sid, pasid, addr, True, pmr)
        if isinstance(t, Fault):
            return t
        self.mem.write(t.hpa, data)
        return None

    def dma_read(self, sid: int, pasid: int | None, addr: int, n: int, pmr: bool = False) -> bytes | Fault:
        t = self.iommu.translate(sid, pasid, addr, False, pmr)
        if isinstance(t, Fault):
            return t
        return self.mem.read(t.hpa, n)

    def xlate(
        self, sid: int, pasid: int | None, addr: int, write: bool = False, pmr: bool = False
    ) -> Translation | Fault:
        return self.iommu.translate(sid, pasid, addr, write, pmr)
