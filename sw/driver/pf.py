"""PF driver: probe, SIOV DVSEC / PASID discovery, IOMMU bring-up, ADI resource ownership.

Mirrors what a Linux SIOV PF driver (idxd, ice) does at ``probe()``::

    pci_enable_device_mem + pci_set_master          -> COMMAND.MEM | COMMAND.MASTER
    pci_find_dvsec_capability(pdev, 0x8086, 5)      -> find_dvsec_capability()
    pci_enable_pasid(pdev, features)                -> PASID ctrl enable
    write System Page Size in the DVSEC             -> portal pages sized to it
    (IOMMU already up: intel_iommu_init at boot)    -> iommu.bring_up() when asked
    iommu_attach_device(RID domain)                 -> PF's own DMA (no PASID prefix)

Everything after probe that touches ADIs goes through :class:`AdiControl` (the PF control
registers in BAR0); only the PF driver and the VDCM on top of it use it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from siov_sim.sw.bus import HostBus, MsiMessage, mmio_write32
from siov_sim.sw.driver import pci
from siov_sim.sw.driver.adi import AdiControl, PfEvent
from siov_sim.sw.driver.iommu_api import DomainKind, IoDomain, IommuApi

log = logging.getLogger(__name__)


class PfError(Exception):
    """The PF does not look like a SIOV endpoint, or a requested setting is unsupported."""


@dataclass(frozen=True, slots=True)
class SiovCaps:
    """What probe learnt from config space."""

    vendor_id: int
    device_id: int
    dvsec: int  # config offset of the Intel SIOV DVSEC
    pasid_cap: int  # config offset of the PASID extended capability
    msix_cap: int | None
    pcie_cap: int | None
    homogeneous: bool
    ims: bool
    supported_page_sizes: int  # bitmap, bit n = 2^(n+12)
    max_pasid_width: int
    priv_supported: bool
    func_dep_link: int


@dataclass(frozen=True, slots=True)
class PfResources:
    """Handed to the :class:`AdiControl` factory after probe."""

    bdf: int
    bar0: pci.Bar
    bar2: pci.Bar
    page_size: int


AdiControlFactory = Callable[[HostBus, PfResources], Awaitable[AdiControl]]


@dataclass(frozen=True, slots=True)
class AerLog:
    """What :meth:`PfDriver.aer_read_clear` found (bit numbers as in the AER status registers)."""

    uncor_status: int
    cor_status: int
    first_error: int | None  # First Error Pointer, if its status bit was set (log valid)
    header: tuple[int, int, int, int] | None  # Header Log DW0..3 (DW0 = bytes 0-3, byte 0 in 31:24)
    prefix: int | None  # TLP Prefix Log DW (when Prefix Log Present)


class PfDriver:
    """Owner of one SIOV PF: its config space, its PF control registers, its ADI pool."""

    def __init__(
        self,
        bus: HostBus,
        bdf: int,
        iommu: IommuApi,
        adi_factory: AdiControlFactory,
        *,
        page_size: int = 4096,
    ) -> None:
        if page_size < 4096 or page_size & (page_size - 1):
            raise PfError(f"system page size {page_size} is not a power of two >= 4 KiB")
        self.bus = bus
        self.bdf = bdf
        self.iommu = iommu
        self.page_size = page_size
        self._adi_factory = adi_factory
        self._adi: AdiControl | None = None
        self._caps: SiovCaps | None = None
        self._bars: dict[int, pci.Bar] = {}
        self._free_adis: list[int] = []
        self._rid_domain: IoDomain | None = None
        self._pf_msgs: list[MsiMessage] = []
        self.pf_irqs = 0
        self.events: list[PfEvent] = []
        self.log = logging.getLogger(f"{__name__}.{pci.bdf_str(bdf)}")

    # ---- probe ------------------------------------------------------------------------------
    async def probe(self, *, bring_up_iommu: bool = True) -> SiovCaps:
        bus, bdf = self.bus, self.bdf
        vendor = await pci.cfg_read16(bus, bdf, pci.PCI_VENDOR_ID)
        device = await pci.cfg_read16(bus, bdf, pci.PCI_DEVICE_ID)
        if vendor == 0xFFFF:
            raise PfError(f"no function at {pci.bdf_str(bdf)}")
        self._bars = await pci.read_bars(bus, bdf)
        if 0 not in self._bars or 2 not in self._bars:
            raise PfError(f"BAR0 and BAR2 are required, found {sorted(self._bars)}")
        cmd = await pci.cfg_read16(bus, bdf, pci.PCI_COMMAND)
        await pci.cfg_write16(bus, bdf, pci.PCI_COMMAND, cmd | pci.PCI_COMMAND_MEMORY | pci.PCI_COMMAND_MASTER)

        dvsec = await pci.find_dvsec_capability(bus, bdf, pci.PCI_VENDOR_ID_INTEL, pci.PCI_DVSEC_ID_INTEL_SIOV)
        if dvsec is None:
            raise PfError("no Intel SIOV DVSEC (vendor 0x8086, ID 5): not a SIOV device")
        pasid = await pci.find_ext_capability(bus, bdf, pci.PCI_EXT_CAP_ID_PASID)
        if pasid is None:
            raise PfError("no PASID extended capability: ADIs cannot be told apart upstream")
        flags = await pci.cfg_read8(bus, bdf, dvsec + pci.SIOV_DVSEC_FLAGS)
        supp = await pci.cfg_read32(bus, bdf, dvsec + pci.SIOV_DVSEC_SUPP_PAGE_SIZES)
        cap = await pci.cfg_read32(bus, bdf, dvsec + pci.SIOV_DVSEC_CAP)
        fdl = await pci.cfg_read8(bus, bdf, dvsec + pci.SIOV_DVSEC_FUNC_DEP)
        pcap = await pci.cfg_read16(bus, bdf, pasid + pci.PCI_PASID_CAP)
        caps = SiovCaps(
            vendor_id=vendor,
            device_id=device,
            dvsec=dvsec,
            pasid_cap=pasid,
            msix_cap=await pci.find_capability(bus, bdf, pci.PCI_CAP_ID_MSIX),
            pcie_cap=await pci.find_capability(bus, bdf, pci.PCI_CAP_ID_EXP),
            homogeneous=bool(flags & pci.SIOV_DVSEC_FLAGS_HOMOGENEOUS),
            ims=bool(cap & pci.SIOV_DVSEC_CAP_IMS),
            supported_page_sizes=supp,
            max_pasid_width=(pcap >> 8) & 0x1F,
            priv_supported=bool(pcap & pci.PCI_PASID_CAP_PRIV),
            func_dep_link=fdl,
        )
        self._caps = caps
        self.log.info(
            "SIOV PF %04x:%04x DVSEC@0x%x PASID@0x%x (width %d) IMS=%s pages=0x%x",
            vendor,
            device,
            dvsec,
            pasid,
            caps.max_pasid_width,
            caps.ims,
            supp,
        )

        # System page size: exactly one bit, must be among the supported ones.
        bit = (self.page_size >> 12).bit_length() - 1
        if not supp & (1 << bit):
            raise PfError(f"page size {self.page_size} not in supported bitmap 0x{supp:x}")
        await pci.cfg_write32(bus, bdf, dvsec + pci.SIOV_DVSEC_SYS_PAGE_SIZE, 1 << bit)
        readback = await pci.cfg_read32(bus, bdf, dvsec + pci.SIOV_DVSEC_SYS_PAGE_SIZE)
        if readback != 1 << bit:
            raise PfError(f"system page size did not stick: wrote 0x{1 << bit:x}, read 0x{readback:x}")

        # PASID enable (pci_enable_pasid): privileged mode only if the device supports it.
        ctrl = pci.PCI_PASID_CTRL_ENABLE | (pci.PCI_PASID_CTRL_PRIV if caps.priv_supported else 0)
        await pci.cfg_write16(bus, bdf, pasid + pci.PCI_PASID_CTRL, ctrl)
        if not (await pci.cfg_read16(bus, bdf, pasid + pci.PCI_PASID_CTRL)) & pci.PCI_PASID_CTRL_ENABLE:
            raise PfError("PASID enable did not stick")

        if bring_up_iommu:
            await self.iommu.bring_up()
        # The PF's own DMA (no prefix, RID_PASID) is pass-through, as the DMA API identity domain.
        self._rid_domain = self.iommu.alloc_domain(DomainKind.PASS_THROUGH)
        await self.iommu.attach_device(bdf, self._rid_domain)

        res = PfResources(bdf=bdf, bar0=self._bars[0], bar2=self._bars[2], page_size=self.page_size)
        self._adi = await self._adi_factory(bus, res)
        n = self._adi.num_adis
        if n * self.page_size > self._bars[2].size:
            raise PfError(f"{n} ADIs of {self.page_size} B portal pages do not fit BAR2 ({self._bars[2].size} B)")
        self._free_adis = list(range(n))
        self.log.info("%d ADIs, portal pages at 0x%x", n, self._bars[2].addr)
        if caps.msix_cap is not None:
            await self._setup_msix(caps.msix_cap)
        return caps

    async def _setup_msix(self, cap: int, vectors: int = 2) -> None:
        """PF MSI-X (``pci_alloc_irq_vectors``): vector 0 = ADI error, 1 = drain done."""
        bus, bdf = self.bus, self.bdf
        ctrl = await pci.cfg_read16(bus, bdf, cap + pci.PCI_MSIX_FLAGS)
        table = await pci.cfg_read32(bus, bdf, cap + pci.PCI_MSIX_TABLE)
        bar = self._bars.get(table & 7)
        if bar is None:
            self.log.warning("MSI-X table in unassigned BAR%d: PF interrupts off", table & 7)
            return
        n = min(vectors, (ctrl & pci.PCI_MSIX_FLAGS_QSIZE) + 1)
        base = bar.addr + (table & ~7)
        for v in range(n):
            msg = bus.alloc_irq(self._on_pf_irq)
            self._pf_msgs.append(msg)
            entry = base + v * pci.PCI_MSIX_ENTRY_SIZE
            await mmio_write32(bus, entry + 0, msg.addr & 0xFFFF_FFFF)
            await mmio_write32(bus, entry + 4, msg.addr >> 32)
            await mmio_write32(bus, entry + 8, msg.data)
            await mmio_write32(bus, entry + pci.PCI_MSIX_ENTRY_VECTOR_CTRL, 0)
        ctrl = (ctrl | pci.PCI_MSIX_FLAGS_ENABLE) & ~pci.PCI_MSIX_FLAGS_MASKALL
        await pci.cfg_write16(bus, bdf, cap + pci.PCI_MSIX_FLAGS, ctrl)

    def _on_pf_irq(self, _msg: MsiMessage) -> None:
        self.pf_irqs += 1

    async def service_events(self) -> list[PfEvent]:
        """Bottom half of the PF interrupt: read/ack the causes, keep them in :attr:`events`."""
        got = await self.adi.pf_events()
        for ev in got:
            if ev.kind == "adi_error":
                self.log.warning("ADI %d entered ERROR (reason 0x%x)", ev.adi, ev.error)
        self.events += got
        return got

    # ---- error reporting (AER) ------------------------------------------------------------------
    async def enable_error_reporting(self) -> bool:
        """DevCtl Correctable / Non-Fatal / Fatal / Unsupported Request Reporting Enable (what the
        Linux AER service sets): the function then sends ERR_* messages. False without PCIe cap."""
        exp = await pci.find_capability(self.bus, self.bdf, pci.PCI_CAP_ID_EXP)
        if exp is None:
            return False
        ctl = await pci.cfg_read16(self.bus, self.bdf, exp + pci.PCI_EXP_DEVCTL)
        ctl &= ~pci.PCI_EXP_DEVCTL_BCR_FLR
        ctl |= pci.PCI_EXP_DEVCTL_CERE | pci.PCI_EXP_DEVCTL_NFERE | pci.PCI_EXP_DEVCTL_FERE | pci.PCI_EXP_DEVCTL_URRE
        await pci.cfg_write16(self.bus, self.bdf, exp + pci.PCI_EXP_DEVCTL, ctl)
        return True

    async def aer_read_clear(self) -> AerLog | None:
        """Read the AER status, First Error Pointer, Header Log and TLP Prefix Log, then clear the
        status bits (RW1C), as the Linux AER driver does for an error source. None without AER."""
        bus, bdf = self.bus, self.bdf
        aer = await pci.find_ext_capability(bus, bdf, pci.PCI_EXT_CAP_ID_ERR)
        if aer is None:
            return None
        unc = await pci.cfg_read32(bus, bdf, aer + pci.PCI_ERR_UNCOR_STATUS)
        cor = await pci.cfg_read32(bus, bdf, aer + pci.PCI_ERR_COR_STATUS)
        cap = await pci.cfg_read32(bus, bdf, aer + pci.PCI_ERR_CAP)
        hdr = tuple([await pci.cfg_read32(bus, bdf, aer + pci.PCI_ERR_HEADER_LOG + 4 * i) for i in range(4)])
        prfx = await pci.cfg_read32(bus, bdf, aer + pci.PCI_ERR_PREFIX_LOG)
        fep = cap & pci.PCI_ERR_CAP_FEP_MASK
        log = AerLog(
            uncor_status=unc,
            cor_status=cor,
            first_error=fep if unc >> fep & 1 else None,
            header=(hdr[0], hdr[1], hdr[2], hdr[3]) if unc >> fep & 1 else None,
            prefix=prfx if unc >> fep & 1 and cap & pci.PCI_ERR_CAP_PREFIX_LOG_PRESENT else None,
        )
        if unc:
            await pci.cfg_write32(bus, bdf, aer + pci.PCI_ERR_UNCOR_STATUS, unc)
        if cor:
            await pci.cfg_write32(bus, bdf, aer + pci.PCI_ERR_COR_STATUS, cor)
        if unc or cor:
            self.log.warning("AER: uncorrectable 0x%08x correctable 0x%08x first error %s", unc, cor,
                             log.first_error)
        return log

    # ---- resources ----------------------------------------------------------------------------
    @property
    def caps(self) -> SiovCaps:
        if self._caps is None:
            raise PfError("PF not probed")
        return self._caps

    @property
    def adi(self) -> AdiControl:
        if self._adi is None:
            raise PfError("PF not probed")
        return self._adi

    @property
    def num_adis(self) -> int:
        return self.adi.num_adis

    @property
    def sid(self) -> int:
        """Requester ID the IOMMU sees for every DMA of this PF and its ADIs."""
        return self.bdf

    def bar(self, index: int) -> pci.Bar:
        return self._bars[index]

    def portal_addr(self, adi: int) -> int:
        """Host physical address of an ADI's portal page."""
        if not 0 <= adi < self.num_adis:
            raise PfError(f"ADI {adi} out of range")
        return self._bars[2].addr + adi * self.page_size

    def free_adi_count(self) -> int:
        return len(self._free_adis)

    def alloc_adis(self, count: int) -> list[int]:
        if count <= 0 or count > len(self._free_adis):
            raise PfError(f"cannot allocate {count} ADIs, {len(self._free_adis)} free")
        got, self._free_adis = self._free_adis[:count], self._free_adis[count:]
        return got

    def free_adis(self, adis: list[int]) -> None:
        for a in adis:
            if a in self._free_adis or not 0 <= a < self.num_adis:
                raise PfError(f"ADI {a} freed twice or out of range")
        self._free_adis = sorted(self._free_adis + adis)
