"""cocotbext-pcie root complex with the VT-d scalable-mode IOMMU model in the upstream path.

Every upstream memory request is translated by requester ID (+ PASID from a ``PasidTlp`` prefix)
before it touches host memory:

* translated reads/writes go to :class:`~siov_sim.model.mem.HostMemory` (registered in
  ``rc.mem_address_space`` in place of the stock ``mem_pool``: RAM below 2 GiB and above 4 GiB, the
  PC memory map around the RC's MSI region at 2 GiB and the BAR aperture at 3-4 GiB);
* a faulting read gets a UR completion (``fault_read_status`` selects CA instead), a faulting write
  is dropped; the fault itself is recorded by the IOMMU (FRCD + fault event MSI);
* DWORD writes *without* PASID to 0xFEE0_0000-0xFEEF_FFFF are interrupts: they go to the
  :class:`~siov_sim.model.irq.InterruptController` and are neither translated nor written to RAM
  (PASID-tagged writes to that range are translated like any DMA);
* the IOMMU's registers sit at host physical ``IOMMU_BASE`` (4 KiB); host software reaches them
  through :class:`siov_sim.tb.pcie.host_bus.RcHostBus`.

Translation requests / translated requests (ATS) are not modelled: they are blocked (UR / dropped)
and counted in ``stats``.
"""

from __future__ import annotations

import logging
from typing import Any

from cocotbext.axi.address_space import Region
from cocotbext.pcie.core import RootComplex
from cocotbext.pcie.core.tlp import CplStatus, Tlp, TlpAt
from cocotbext.pcie.core.utils import PcieId

from siov_sim.model.iommu import Caps, Fault, VtdIommu
from siov_sim.model.irq import InterruptController, is_msi_address
from siov_sim.model.mem import BusError, HostMemory
from siov_sim.tb.coverage import sample_translation
from siov_sim.tb.pcie.pasid_tlp import install as install_pasid_tlp

IOMMU_BASE = 0xFED9_0000
IOMMU_SIZE = 0x1000
LOW_RAM_END = 0x8000_0000  # RC MSI region at 2 GiB, BAR aperture 3-4 GiB
HIGH_RAM_START = 1 << 32

log = logging.getLogger(__name__)


class HostMemoryRegion(Region):  # type: ignore[misc]
    """A cocotbext-axi ``Region`` over a window of :class:`HostMemory` (offsets from ``start``)."""

    def __init__(self, mem: HostMemory, start: int, size: int) -> None:
        super().__init__(size)
        self.hmem = mem
        self.start = start

    async def _read(self, address: int, length: int, **kwargs: Any) -> bytes:
        return self.hmem.read(self.start + address, length)

    async def _write(self, address: int, data: bytes, **kwargs: Any) -> None:
        self.hmem.write(self.start + address, bytes(data))


class IommuRootComplex(RootComplex):  # type: ignore[misc]
    """``RootComplex`` whose upstream memory requests go through a :class:`VtdIommu`."""

    def __init__(
        self,
        host_mem: HostMemory | None = None,
        *args: Any,
        caps: Caps | None = None,
        iommu: VtdIommu | None = None,
        irq: InterruptController | None = None,
        fault_read_status: CplStatus = CplStatus.UR,
        **kwargs: Any,
    ) -> None:
        install_pasid_tlp()  # the PASID prefix must survive every port hop to reach this RC
        super().__init__(*args, **kwargs)
        self.host_mem = host_mem if host_mem is not None else HostMemory(0, LOW_RAM_END)
        self.irq = irq if irq is not None else InterruptController()
        self.iommu = iommu if iommu is not None else VtdIommu(self.host_mem, caps)
        self.iommu.msi_sink = self.remapping_hw_msi
        self.fault_read_status = fault_read_status
        self.iommu_base = IOMMU_BASE
        self.stats = {
            "dma_rd": 0,
            "dma_wr": 0,
            "rd_fault": 0,
            "wr_fault": 0,
            "msi": 0,
            "ats_blocked": 0,
            "intr_malformed": 0,
        }
        self.faults: list[Fault] = []
        # set by the fast link's device: MMIO it claims bypasses the switch/bridge tasks
        self.mmio_bypass: Any = None
        self._install_host_memory()

    # ------------------------------------------------------------------ memory map
    def ram_windows(self) -> list[tuple[int, int]]:
        """Host-physical ``[lo, hi)`` ranges where DMA reaches :attr:`host_mem` (not the MSI
        region at 2 GiB nor the BAR aperture at 3-4 GiB)."""
        hm = self.host_mem
        start, end = hm.base, hm.base + hm.size
        windows = [(start, min(end, LOW_RAM_END)), (max(start, HIGH_RAM_START), end)]
        return [(lo, hi) for lo, hi in windows if hi > lo]

    def _install_host_memory(self) -> None:
        space = self.mem_address_space
        space.regions = [r for r in space.regions if r[3] is not self.mem_pool]
        hm = self.host_mem
        for lo, hi in self.ram_windows():
            space.register_region(HostMemoryRegion(hm, lo, hi - lo), lo)
            log.info("host RAM 0x%x-0x%x registered in the RC address space", lo, hi - 1)

    # ------------------------------------------------------------------ interrupts
    def remapping_hw_msi(self, addr: int, data: int) -> None:
        """The IOMMU's own interrupts (fault event, invalidation completion): a DWORD write."""
        if is_msi_address(addr):
            self.irq.deliver(addr, data)
            return
        try:
            self.host_mem.write_u32(addr, data)
        except BusError:
            log.warning("remapping-hardware interrupt to 0x%x outside RAM dropped", addr)

    def _interrupt_write(self, tlp: Tlp) -> None:
        data = tlp.get_data()
        if tlp.length != 1 or tlp.first_be != 0xF or len(data) < 4:
            self.stats["intr_malformed"] += 1
            log.warning("malformed write to the interrupt range dropped: %r", tlp)
            self.faults.append(self.iommu.interrupt_range_fault(int(tlp.requester_id), tlp.address, True))
            sample_translation(self.faults[-1], True)
            return
        self.stats["msi"] += 1
        self.irq.deliver(tlp.address & ~0x3, int.from_bytes(bytes(data[:4]), "little"))

    # ------------------------------------------------------------------ translation
    def _translate(self, tlp: Tlp, write: bool) -> Tlp | Fault | None:
        """Translated copy of ``tlp``, a Fault, or None for a blocked ATS request."""
        if tlp.at != TlpAt.DEFAULT:
            self.stats["ats_blocked"] += 1
            log.warning("ATS request blocked (ATS not modelled): %r", tlp)
            return None
        sid = int(tlp.requester_id)
        pasid = getattr(tlp, "pasid", None) if getattr(tlp, "pasid_present", False) else None
        pmr = bool(getattr(tlp, "pmr", False)) if pasid is not None else False
        er = bool(getattr(tlp, "er", False)) if pasid is not None else False
        try:
            r = self.iommu.translate(sid, pasid, tlp.address, write, pmr, er)
        except Exception:  # last resort: a model bug must not kill the simulation's TLP path
            log.exception("IOMMU model error on %r", tlp)
            return None
        sample_translation(r, write)
        if isinstance(r, Fault):
            return r
        out = Tlp(tlp)
        out.address = r.hpa
        return out

    async def handle_mem_read_tlp(self, tlp: Tlp) -> None:
        self.stats["dma_rd"] += 1
        if not getattr(tlp, "pasid_present", False) and is_msi_address(tlp.address):
            # a read without PASID of the interrupt range is neither an interrupt nor DMA: blocked
            t: Tlp | Fault | None = self.iommu.interrupt_range_fault(int(tlp.requester_id), tlp.address, False)
            sample_translation(t, False)
        else:
            t = self._translate(tlp, False)
        if isinstance(t, Tlp):
            await super().handle_mem_read_tlp(t)
            return
        if isinstance(t, Fault):
            self.stats["rd_fault"] += 1
            self.faults.append(t)
        cpl = Tlp.create_completion_for_tlp(tlp, PcieId(0, 0, 0), False, self.fault_read_status)
        await self.send(cpl)

    async def handle_mem_write_tlp(self, tlp: Tlp) -> None:
        self.stats["dma_wr"] += 1
        if not getattr(tlp, "pasid_present", False) and is_msi_address(tlp.address):
            self._interrupt_write(tlp)
            return
        t = self._translate(tlp, True)
        if isinstance(t, Tlp):
            await super().handle_mem_write_tlp(t)
            return
        if isinstance(t, Fault):
            self.stats["wr_fault"] += 1
            self.faults.append(t)
        # posted: dropped (the fault is in the IOMMU's FRCDs)
