"""A VDEV: one virtual device composed from ADIs, presented to VFIO as a vfio-pci device.

Regions (vfio-pci indexes):

* CONFIG (7): :class:`~.vconfig.VirtualConfig`, emulated.
* BAR0 (0): virtual control registers + virtual MSI-X table/PBA, **trapped and emulated**. Every
  guest write is validated before anything reaches the PF control registers (:data:`VREG`).
* BAR2 (2): one portal page per queue, **mmap-able** (SPARSE_MMAP lists exactly the backed
  pages). A mapping goes straight to the ADI's physical portal page in the PF's BAR2.

Guest-visible queue numbers 0..n-1 map to the VDEV's ADIs; physical ADI numbers, other VDEVs'
ADIs and the PASID are never writable by the guest. Rejected writes raise
:class:`VfioError` and are recorded in :attr:`Vdev.rejects` and the REJECT register.
"""

from __future__ import annotations

import errno
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum

from siov_sim.sw.bus import HostBus, MsiMessage
from siov_sim.sw.driver import pci
from siov_sim.sw.driver.abi import CPL_SIZE, DESC_SIZE, RX_HDR_SIZE, AdiState
from siov_sim.sw.driver.adi import AdiConfig, AdiSnapshot
from siov_sim.sw.driver.iommu_api import IoDomain
from siov_sim.sw.driver.pf import PfDriver, PfError
from siov_sim.sw.regs import AdiPage
from siov_sim.sw.vdcm import migration as mig
from siov_sim.sw.vdcm.types import MdevType
from siov_sim.sw.vdcm.vconfig import PCIE_CAP_OFF, VconfigLayout, VirtualConfig
from siov_sim.sw.vfio import uapi as u
from siov_sim.sw.vfio.device_ops import IrqCallback, IrqInfo, MmioMapping, RegionInfo, VfioError
from siov_sim.sw.vfio.migration import (
    ERROR,
    RESUMING,
    RUNNING,
    RUNNING_P2P,
    STOP,
    STOP_COPY,
    MigrationFile,
    state_name,
)

VDEV_MAGIC = 0x5105_1DEA
VDEV_VENDOR_ID = 0x1DEA  # the VDEV's own IDs, distinct from the PF's
VDEV_DEVICE_ID = 0x5106
BAR0_SIZE = 0x4000
MSIX_TABLE_OFF = 0x2000
MSIX_PBA_OFF = 0x3000
Q_BASE = 0x100
Q_STRIDE = 0x40
MAX_RING = 1 << 15  # ring_size.log2_entries is 4 bits
ADDR_LIMIT = 1 << 57  # 5-level canonical width: anything above cannot be a DMA address


class VREG(IntEnum):
    """Virtual BAR0 register offsets (global ones; queue q's block is at Q_BASE + q * Q_STRIDE)."""

    ID = 0x000  # RO magic
    CAP = 0x004  # RO [7:0] queues, [11:8] log2(page size) - 12
    NUM_VECTORS = 0x008  # RO MSI-X vectors (one per queue)
    REJECT = 0x00C  # RO [7:0] last reject reason, [31:16] count; write 0 clears
    PASID = 0x010  # RO
    GROUP = 0x014  # RO switch group (which peers this VDEV's SENDs can reach)


class QREG(IntEnum):
    RING_BASE_LO = 0x00
    RING_BASE_HI = 0x04
    RING_SIZE = 0x08  # entries, power of two
    CTRL = 0x0C  # bit0 ENABLE, bit1 RESET (self-clearing)
    CPL_BASE_LO = 0x10
    CPL_BASE_HI = 0x14
    RX_BASE_LO = 0x18
    RX_BASE_HI = 0x1C
    RX_SIZE = 0x20  # receive slots, power of two (0 = cannot receive)
    RX_SLOT_BYTES = 0x24  # power of two, 64..65536
    STATUS = 0x28  # RO [1:0] state, [15:8] error, [16] busy (read from the ADI)
    SW_ADDR = 0x2C  # RO: this queue's switch address; a write is a spoofing attempt
    PASID = 0x30  # RO: a write is a PASID change attempt
    COMPLETED = 0x34  # RO counter


CTRL_ENABLE = 1
CTRL_RESET = 2
#: The guest's virtual queue configuration registers, in the order the state stream carries them.
CONFIG_ORDER = (
    QREG.RING_BASE_LO,
    QREG.RING_BASE_HI,
    QREG.RING_SIZE,
    QREG.CPL_BASE_LO,
    QREG.CPL_BASE_HI,
    QREG.RX_BASE_LO,
    QREG.RX_BASE_HI,
    QREG.RX_SIZE,
    QREG.RX_SLOT_BYTES,
)
_CONFIG_REGS = {
    QREG.RING_BASE_LO,
    QREG.RING_BASE_HI,
    QREG.RING_SIZE,
    QREG.CPL_BASE_LO,
    QREG.CPL_BASE_HI,
    QREG.RX_BASE_LO,
    QREG.RX_BASE_HI,
    QREG.RX_SIZE,
    QREG.RX_SLOT_BYTES,
}


class Reject(IntEnum):
    """Why trap-and-emulate refused a guest write."""

    BAD_OFFSET = 1
    READ_ONLY = 2
    PASID_CHANGE = 3
    SPOOF = 4
    QUEUE_BUSY = 5
    BAD_VALUE = 6
    NOT_ATTACHED = 7
    BAD_SIZE = 8


@dataclass(frozen=True, slots=True)
class RejectRecord:
    reason: Reject
    offset: int
    value: int
    detail: str


@dataclass(slots=True)
class _VQueue:
    regs: dict[int, int]
    enabled: bool = False


class Vdev:
    """Implements :class:`~siov_sim.sw.vfio.device_ops.VfioDeviceOps` for one mdev instance."""

    def __init__(
        self,
        *,
        uuid: str,
        mdev_type: MdevType,
        pf: PfDriver,
        adis: list[int],
        pasid: int,
        vbdf: int,
        group: int,
        sw_addrs: list[int],
    ) -> None:
        self.uuid = uuid
        self.mdev_type = mdev_type
        self.pf = pf
        self.bus: HostBus = pf.bus
        self.adis = list(adis)
        self.pasid = pasid
        self.vbdf = vbdf
        self.group = group
        self.sw_addrs = list(sw_addrs)
        n = len(adis)
        self.page_size = pf.page_size
        bar2 = self.page_size
        while bar2 < n * self.page_size:
            bar2 <<= 1
        self.bar2_size = bar2
        self.config = VirtualConfig(
            VconfigLayout(
                vendor_id=VDEV_VENDOR_ID,
                device_id=VDEV_DEVICE_ID,
                subsys_vendor_id=VDEV_VENDOR_ID,
                subsys_id=mdev_type.subsys_id,
                class_code=0x088000,  # system peripheral, other
                revision=1,
                bar0_size=BAR0_SIZE,
                bar2_size=bar2,
                msix_vectors=n,
                msix_table_off=MSIX_TABLE_OFF,
                msix_pba_off=MSIX_PBA_OFF,
            )
        )
        self._queues = [_VQueue(self._queue_reset_regs()) for _ in range(n)]
        self._msix = bytearray(16 * n)
        self._pending = [False] * n
        self._callbacks: list[IrqCallback | None] = [None] * n
        self._host_msi: list[MsiMessage | None] = [None] * n
        self._vfio_masked = [False] * n
        self._req_callback: IrqCallback | None = None
        self._reject_count = 0
        self._last_reject = 0
        self.rejects: list[RejectRecord] = []
        self.domain: IoDomain | None = None
        self.irq_counts = [0] * n
        self._mmaps: list[MmioMapping] = []  # handed to the current user; revoked on close
        self.log = logging.getLogger(f"{__name__}.{uuid[:8]}")
        self._reset_msix_table()
        # VFIO migration v2 (docs/software.md "Live migration")
        self._mig_state = RUNNING
        self._mig_file: MigrationFile | None = None
        self._was: list[AdiState | None] = [None] * n  # what each ADI was in when STOP quiesced it
        self.state_bytes = 0  # size of the last device-state stream saved or loaded

    # ---- identity / VfioDeviceOps basics --------------------------------------------------------
    @property
    def name(self) -> str:
        return self.uuid

    @property
    def num_queues(self) -> int:
        return len(self.adis)

    @property
    def num_regions(self) -> int:
        return u.VFIO_PCI_NUM_REGIONS

    @property
    def num_irqs(self) -> int:
        return u.VFIO_PCI_NUM_IRQS

    @property
    def attached(self) -> bool:
        return self.domain is not None

    def region_info(self, index: int) -> RegionInfo:
        rw = u.VFIO_REGION_INFO_FLAG_READ | u.VFIO_REGION_INFO_FLAG_WRITE
        if index == u.VFIO_PCI_CONFIG_REGION_INDEX:
            return RegionInfo(index, rw, 4096)
        if index == u.VFIO_PCI_BAR0_REGION_INDEX:
            return RegionInfo(index, rw, BAR0_SIZE)
        if index == u.VFIO_PCI_BAR2_REGION_INDEX:
            flags = rw | u.VFIO_REGION_INFO_FLAG_MMAP | u.VFIO_REGION_INFO_FLAG_CAPS
            return RegionInfo(index, flags, self.bar2_size, ((0, self.num_queues * self.page_size),))
        return RegionInfo(index, 0, 0)

    def irq_info(self, index: int) -> IrqInfo:
        if index == u.VFIO_PCI_MSIX_IRQ_INDEX:
            return IrqInfo(
                index,
                u.VFIO_IRQ_INFO_EVENTFD | u.VFIO_IRQ_INFO_MASKABLE | u.VFIO_IRQ_INFO_NORESIZE,
                self.num_queues,
            )
        if index == u.VFIO_PCI_REQ_IRQ_INDEX:
            return IrqInfo(index, u.VFIO_IRQ_INFO_EVENTFD, 1)
        return IrqInfo(index, 0, 0)

    # ---- rejects ------------------------------------------------------------------------------
    def _reject(self, reason: Reject, off: int, value: int, detail: str, err: int = errno.EPERM) -> VfioError:
        self._reject_count += 1
        self._last_reject = reason
        self.rejects.append(RejectRecord(reason, off, value, detail))
        self.log.warning("rejected guest write 0x%x=0x%x: %s (%s)", off, value, reason.name, detail)
        return VfioError(err, f"{reason.name}: {detail}")

    # ---- region access --------------------------------------------------------------------------
    async def region_read(self, index: int, off: int, length: int) -> bytes:
        if index == u.VFIO_PCI_CONFIG_REGION_INDEX:
            return self.config.read(off, length)
        if index == u.VFIO_PCI_BAR0_REGION_INDEX:
            return await self._bar0_read(off, length)
        if index == u.VFIO_PCI_BAR2_REGION_INDEX:
            return await self._bar2_read(off, length)
        raise VfioError(errno.EINVAL, f"region {index} not readable")

    async def region_write(self, index: int, off: int, data: bytes) -> None:
        if index == u.VFIO_PCI_CONFIG_REGION_INDEX:
            # DevCtl Initiate Function Level Reset (bit 15, byte PCIE_CAP_OFF + 9): the virtual FLR
            # resets this VDEV only (its ADIs drained and reset, virtual state to power-on)
            flr_byte = PCIE_CAP_OFF + pci.PCI_EXP_DEVCTL + 1
            if off <= flr_byte < off + len(data) and data[flr_byte - off] & 0x80:
                self.config.write(off, data)
                await self.reset()
                self.log.info("virtual FLR")
                return
            master = self.config.bus_master
            self.config.write(off, data)
            if master and not self.config.bus_master:  # bus mastering off: the queues stop now
                for q in range(self.num_queues):  # (no DMA may start after BME clears: ABORT)
                    if self._queues[q].enabled:
                        await self._quiesce(q, abort=True)
            self._msix_state_changed()
            return
        if index == u.VFIO_PCI_BAR0_REGION_INDEX:
            await self._bar0_write(off, data)
            return
        if index == u.VFIO_PCI_BAR2_REGION_INDEX:
            await self._bar2_write(off, data)
            return
        raise VfioError(errno.EINVAL, f"region {index} not writable")

    def region_mmap(self, index: int, off: int, size: int) -> MmioMapping:
        if index != u.VFIO_PCI_BAR2_REGION_INDEX:
            raise VfioError(errno.EINVAL, f"region {index} is not mmap-able")
        first, last = off // self.page_size, (off + size - 1) // self.page_size
        if last >= self.num_queues:
            raise VfioError(errno.EINVAL, "mmap beyond this VDEV's portal pages")
        addrs = [self.pf.portal_addr(self.adis[q]) for q in range(first, last + 1)]
        if any(b != a + self.page_size for a, b in itertools.pairwise(addrs)):
            raise VfioError(errno.EINVAL, "portal pages of these queues are not contiguous: map one at a time")
        mapping = MmioMapping(self.bus, addrs[0] + off % self.page_size, size)
        self._mmaps = [m for m in self._mmaps if not m.revoked] + [mapping]
        return mapping

    async def _bar2_read(self, off: int, length: int) -> bytes:
        q = off // self.page_size
        if q >= self.num_queues or (off % self.page_size) + length > self.page_size:
            return bytes(length)  # unbacked tail of the BAR reads as zero
        return await self.bus.mmio_read(self.pf.portal_addr(self.adis[q]) + off % self.page_size, length)

    async def _bar2_write(self, off: int, data: bytes) -> None:
        q = off // self.page_size
        if q >= self.num_queues or (off % self.page_size) + len(data) > self.page_size:
            raise self._reject(Reject.BAD_OFFSET, off, 0, "portal write outside this VDEV's pages", errno.EINVAL)
        await self.bus.mmio_write(self.pf.portal_addr(self.adis[q]) + off % self.page_size, data)

    # ---- BAR0: registers --------------------------------------------------------------------------
    async def _bar0_read(self, off: int, length: int) -> bytes:
        if length not in (4, 8) or off % length:
            raise VfioError(errno.EINVAL, f"BAR0 read must be 4/8-byte aligned (0x{off:x}+{length})")
        out = b""
        for o in range(off, off + length, 4):
            out += (await self._read32(o)).to_bytes(4, "little")
        return out

    async def _read32(self, off: int) -> int:
        if MSIX_TABLE_OFF <= off < MSIX_TABLE_OFF + len(self._msix):
            i = off - MSIX_TABLE_OFF
            return int.from_bytes(self._msix[i : i + 4], "little")
        if MSIX_PBA_OFF <= off < MSIX_PBA_OFF + 8 * ((self.num_queues + 63) // 64):
            word = (off - MSIX_PBA_OFF) * 8
            return sum(1 << (b - word) for b in range(word, min(word + 32, self.num_queues)) if self._pending[b])
        if off == VREG.ID:
            return VDEV_MAGIC
        if off == VREG.CAP:
            return self.num_queues | ((self.page_size.bit_length() - 13) << 8)
        if off == VREG.NUM_VECTORS:
            return self.num_queues
        if off == VREG.REJECT:
            return (self._last_reject & 0xFF) | (min(self._reject_count, 0xFFFF) << 16)
        if off == VREG.PASID:
            return self.pasid
        if off == VREG.GROUP:
            return self.group
        q, r = self._queue_of(off)
        if q is None:
            return 0
        if r == QREG.STATUS:
            st = await self.pf.adi.status(self.adis[q])
            return AdiPage.STATUS.pack(state=int(st.state), err=st.error, busy=int(st.busy))  # the ADI's layout
        if r == QREG.COMPLETED:
            return (await self.pf.adi.status(self.adis[q])).completed & 0xFFFF_FFFF
        if r == QREG.SW_ADDR:
            return self.sw_addrs[q]
        if r == QREG.PASID:
            return self.pasid
        return self._queues[q].regs.get(r, 0)

    async def _bar0_write(self, off: int, data: bytes) -> None:
        if len(data) not in (4, 8) or off % len(data):
            raise self._reject(Reject.BAD_SIZE, off, 0, f"{len(data)}-byte write at 0x{off:x}", errno.EINVAL)
        for i in range(0, len(data), 4):
            await self._write32(off + i, int.from_bytes(data[i : i + 4], "little"))

    def _queue_of(self, off: int) -> tuple[int | None, int]:
        if Q_BASE <= off < Q_BASE + Q_STRIDE * self.num_queues:
            return (off - Q_BASE) // Q_STRIDE, (off - Q_BASE) % Q_STRIDE
        return None, 0

    async def _write32(self, off: int, value: int) -> None:
        if MSIX_TABLE_OFF <= off < MSIX_TABLE_OFF + len(self._msix):
            i = off - MSIX_TABLE_OFF
            self._msix[i : i + 4] = value.to_bytes(4, "little")
            self._msix_state_changed()
            return
        if off == VREG.REJECT:
            if value:
                raise self._reject(Reject.BAD_VALUE, off, value, "only 0 clears REJECT", errno.EINVAL)
            self._last_reject = self._reject_count = 0
            return
        if off == VREG.PASID:
            raise self._reject(Reject.PASID_CHANGE, off, value, "the VDEV's PASID is owned by the host")
        if off == VREG.GROUP:
            raise self._reject(Reject.SPOOF, off, value, "tried to change the switch group")
        if off in (VREG.ID, VREG.CAP, VREG.NUM_VECTORS):
            raise self._reject(Reject.READ_ONLY, off, value, "read-only register")
        q, r = self._queue_of(off)
        if q is None:
            if Q_BASE <= off < MSIX_TABLE_OFF:
                raise self._reject(Reject.BAD_OFFSET, off, value, "queue beyond this VDEV's queues", errno.EINVAL)
            raise self._reject(Reject.BAD_OFFSET, off, value, "no register here", errno.EINVAL)
        vq = self._queues[q]
        if r == QREG.PASID:
            raise self._reject(Reject.PASID_CHANGE, off, value, f"queue {q} PASID is owned by the host")
        if r == QREG.SW_ADDR:
            raise self._reject(Reject.SPOOF, off, value, f"queue {q} tried to change its switch address")
        if r in (QREG.STATUS, QREG.COMPLETED):
            raise self._reject(Reject.READ_ONLY, off, value, "read-only register")
        if r in _CONFIG_REGS:
            if vq.enabled:
                raise self._reject(Reject.QUEUE_BUSY, off, value, f"queue {q} is enabled", errno.EBUSY)
            vq.regs[r] = value
            return
        if r == QREG.CTRL:
            await self._ctrl_write(q, value)
            return
        raise self._reject(Reject.BAD_OFFSET, off, value, "no register here", errno.EINVAL)

    # ---- queue control ----------------------------------------------------------------------------
    @staticmethod
    def _queue_reset_regs() -> dict[int, int]:
        regs: dict[int, int] = dict.fromkeys(_CONFIG_REGS, 0)
        regs[QREG.RX_SLOT_BYTES] = 2048
        return regs

    def _qaddr(self, q: int, lo: QREG) -> int:
        regs = self._queues[q].regs
        return regs[lo] | (regs[QREG(lo + 4)] << 32)

    async def _ctrl_write(self, q: int, value: int) -> None:
        off = Q_BASE + q * Q_STRIDE + QREG.CTRL
        if value & ~(CTRL_ENABLE | CTRL_RESET):
            raise self._reject(Reject.BAD_VALUE, off, value, "unknown CTRL bits", errno.EINVAL)
        vq = self._queues[q]
        if self._mig_state not in (RUNNING, RUNNING_P2P):
            raise self._reject(
                Reject.QUEUE_BUSY,
                off,
                value,
                f"device is in migration state {state_name(self._mig_state)}",
                errno.EBUSY,
            )
        if value & CTRL_RESET:
            await self._quiesce(q, abort=True)
            vq.regs = self._queue_reset_regs()
            return
        if value & CTRL_ENABLE and not vq.enabled:
            cfg = self._validated_config(q, off, value)
            adi = self.adis[q]
            try:
                await self.pf.adi.configure(adi, cfg)
                msg = self._host_msi[q]
                await self.pf.adi.set_ims(adi, msg, masked=msg is None)
                await self.pf.adi.set_switch_port(adi, self.group, self.sw_addrs[q], send=True, recv=cfg.rx_slots > 0)
                await self.pf.adi.enable(adi)
            except PfError as exc:  # the device refused: leave the ADI clean, tell the guest EIO
                await self._quiesce(q)
                raise VfioError(errno.EIO, f"queue {q}: device refused enable: {exc}") from exc
            vq.enabled = True
            self.log.info(
                "queue %d -> ADI %d enabled: ring 0x%x/%d PASID %d",
                q,
                adi,
                cfg.ring_base,
                cfg.ring_size,
                cfg.pasid,
            )
        elif not value & CTRL_ENABLE and vq.enabled:
            await self._quiesce(q)

    def _validated_config(self, q: int, off: int, value: int) -> AdiConfig:
        if self.domain is None:
            raise self._reject(Reject.NOT_ATTACHED, off, value, "no IOMMU domain attached to the PASID", errno.EIO)
        if not self.config.bus_master:
            raise self._reject(Reject.BAD_VALUE, off, value, "bus mastering disabled in COMMAND", errno.EIO)
        regs = self._queues[q].regs
        ring, cpl, rx = (
            self._qaddr(q, QREG.RING_BASE_LO),
            self._qaddr(q, QREG.CPL_BASE_LO),
            self._qaddr(q, QREG.RX_BASE_LO),
        )
        size, rx_slots, slot = regs[QREG.RING_SIZE], regs[QREG.RX_SIZE], regs[QREG.RX_SLOT_BYTES]
        problems = []
        if not 2 <= size <= MAX_RING or size & (size - 1):
            problems.append(f"ring size {size} not a power of two in [2, {MAX_RING}]")
        if ring % DESC_SIZE or not 0 < ring < ADDR_LIMIT:
            problems.append(f"ring base 0x{ring:x} not {DESC_SIZE}-byte aligned / null / non-canonical")
        if cpl % CPL_SIZE or not 0 < cpl < ADDR_LIMIT:
            problems.append(f"completion base 0x{cpl:x} not {CPL_SIZE}-byte aligned / null")
        if rx_slots and (
            rx_slots & (rx_slots - 1)
            or rx_slots > MAX_RING
            or slot & (slot - 1)
            or not 64 <= slot <= 65536
            or rx % RX_HDR_SIZE
            or not 0 < rx < ADDR_LIMIT
        ):
            problems.append(f"rx ring 0x{rx:x}: {rx_slots} slots of {slot} B invalid")
        if problems:
            raise self._reject(Reject.BAD_VALUE, off, value, "; ".join(problems), errno.EINVAL)
        return AdiConfig(
            ring_base=ring,
            ring_size=size,
            cpl_base=cpl,
            pasid=self.pasid,
            pmr=False,
            rx_base=rx,
            rx_slots=rx_slots,
            rx_slot_bytes=slot,
        )

    async def _quiesce(self, q: int, *, abort: bool = False) -> None:
        """Stop the ADI (no request outstanding), then reset it to DISABLED. ``abort``: the
        descriptor in flight is cut at its next DMA request (record ABORTED), for resets and
        teardown where waiting for a whole descriptor (up to 1 MiB) is wrong; otherwise it is
        drained (finishes completely), for the guest's own queue disable."""
        adi = self.adis[q]
        st = await self.pf.adi.status(adi)
        if abort and (st.state != AdiState.DISABLED or st.busy):
            await self.pf.adi.abort(adi)
        elif st.state != AdiState.DISABLED:
            await self.pf.adi.drain(adi)
        await self.pf.adi.reset(adi)
        await self.pf.adi.set_switch_port(adi, self.group, self.sw_addrs[q], send=False, recv=False)
        self._queues[q].enabled = False

    async def quiesce_all(self) -> None:
        """Reset (FLR) and teardown: every ADI aborted (ABORT, not DRAIN) and reset."""
        for q in range(self.num_queues):
            await self._quiesce(q, abort=True)

    def queue_enabled(self, q: int) -> bool:
        return self._queues[q].enabled

    # ---- interrupts -----------------------------------------------------------------------------
    def _reset_msix_table(self) -> None:
        self._msix = bytearray(16 * self.num_queues)
        for v in range(self.num_queues):  # vector control: masked at reset (PCI spec)
            self._msix[16 * v + pci.PCI_MSIX_ENTRY_VECTOR_CTRL] = pci.PCI_MSIX_ENTRY_CTRL_MASKBIT
        self._pending = [False] * self.num_queues

    def _guest_masked(self, v: int) -> bool:
        if not self.config.msix_enabled:
            return False  # a user-space driver never enables the virtual MSI-X: VFIO masks only
        if self.config.msix_function_masked:
            return True
        return bool(self._msix[16 * v + pci.PCI_MSIX_ENTRY_VECTOR_CTRL] & pci.PCI_MSIX_ENTRY_CTRL_MASKBIT)

    def _msix_state_changed(self) -> None:
        for v in range(self.num_queues):
            if self._pending[v]:
                self._deliver(v)

    def _deliver(self, v: int) -> None:
        cb = self._callbacks[v]
        if cb is None:
            return
        if self._vfio_masked[v] or self._guest_masked(v):
            self._pending[v] = True
            return
        self._pending[v] = False
        cb()

    def _irq_handler(self, v: int) -> Callable[[MsiMessage], None]:
        def handler(_msg: MsiMessage) -> None:
            self._on_host_irq(v)

        return handler

    def _on_host_irq(self, v: int) -> None:
        self.irq_counts[v] += 1
        self._deliver(v)

    async def set_irq_callbacks(self, index: int, start: int, callbacks: Sequence[IrqCallback | None]) -> None:
        if index == u.VFIO_PCI_REQ_IRQ_INDEX:
            self._req_callback = callbacks[0] if callbacks else None
            return
        if index != u.VFIO_PCI_MSIX_IRQ_INDEX:
            raise VfioError(errno.EINVAL, f"irq index {index} has no vectors")
        if not callbacks:  # count 0: tear down every vector
            callbacks = [None] * self.num_queues
            start = 0
        for i, cb in enumerate(callbacks):
            v = start + i
            self._callbacks[v] = cb
            if cb is not None and self._host_msi[v] is None:
                self._host_msi[v] = self.bus.alloc_irq(self._irq_handler(v))
                await self.pf.adi.set_ims(self.adis[v], self._host_msi[v], masked=False)
            elif cb is None and self._host_msi[v] is not None:
                await self.pf.adi.set_ims(self.adis[v], None, masked=True)
                msg = self._host_msi[v]
                assert msg is not None
                self.bus.free_irq(msg)
                self._host_msi[v] = None

    def mask_irqs(self, index: int, start: int, count: int, mask: bool) -> None:
        if index != u.VFIO_PCI_MSIX_IRQ_INDEX:
            raise VfioError(errno.EINVAL, f"irq index {index} is not maskable")
        for v in range(start, start + count):
            self._vfio_masked[v] = mask
            if not mask and self._pending[v]:
                self._deliver(v)

    def trigger_irqs(self, index: int, start: int, count: int) -> None:
        if index == u.VFIO_PCI_REQ_IRQ_INDEX:
            if self._req_callback is not None:
                self._req_callback()
            return
        for v in range(start, start + count):
            self._deliver(v)

    def signal_request(self) -> bool:
        """The host wants the device back (remove pending): VFIO's REQ interrupt."""
        if self._req_callback is None:
            return False
        self._req_callback()
        return True

    # ---- reset / IOMMU ---------------------------------------------------------------------------
    async def reset(self) -> None:
        """VFIO_DEVICE_RESET (FLR): quiesce every ADI, virtual state to power-on values.

        The PASID binding and interrupt triggers (host-side state owned by VFIO) survive.
        """
        await self.quiesce_all()
        for vq in self._queues:
            vq.regs = self._queue_reset_regs()
        self.config.reset()
        self._reset_msix_table()
        self._vfio_masked = [False] * self.num_queues
        self._reject_count = self._last_reject = 0
        self._end_session()
        self._mig_state = RUNNING  # VFIO_DEVICE_RESET is the way out of ERROR
        self._was = [None] * self.num_queues
        self.log.info("reset")

    async def close_device(self) -> None:
        """The user is gone (last device fd closed): what vfio-pci's ``vfio_pci_core_close_device``
        does. Interrupts first (no callback of the old user may run again, host vectors and IMS
        entries freed), then the device reset (every ADI drained and disabled, virtual state to
        power-on), then the user's portal mappings revoked. The PASID binding belongs to the
        container and goes when the group leaves it."""
        await self.release_irqs()
        await self.reset()
        for m in self._mmaps:
            m.revoke()
        self._mmaps.clear()
        self.log.info("closed: interrupts off, reset, %s", "mappings revoked")

    async def replace_domain(self, domain: IoDomain) -> None:
        """Point the PASID at another table without stopping the queues (iommufd HWPT replace)."""
        if self.domain is None:
            await self.attach_domain(domain)
            return
        await self.pf.iommu.replace_pasid(self.pf.sid, self.pasid, domain)
        self.domain = domain
        self.log.info("PASID %d moved to another page table, queues untouched", self.pasid)

    async def attach_domain(self, domain: IoDomain) -> None:
        if self.domain is not None:
            raise VfioError(errno.EBUSY, f"{self.uuid}: PASID {self.pasid} already attached")
        await self.pf.iommu.bind_pasid(self.pf.sid, self.pasid, domain)
        self.domain = domain
        self.log.info("PASID %d bound", self.pasid)

    async def detach_domain(self) -> None:
        """Teardown order: drain every ADI, then unbind (invalidate + wait) the PASID."""
        if self.domain is None:
            return
        await self.quiesce_all()
        await self.pf.iommu.unbind_pasid(self.pf.sid, self.pasid)
        self.domain = None
        self.log.info("PASID %d unbound", self.pasid)

    async def release_irqs(self) -> None:
        await self.set_irq_callbacks(u.VFIO_PCI_MSIX_IRQ_INDEX, 0, [])
        self._req_callback = None

    # ---- VFIO migration v2 (VfioMigrationOps) ----------------------------------------------------
    @property
    def migration_flags(self) -> int:
        return u.VFIO_MIGRATION_STOP_COPY | u.VFIO_MIGRATION_P2P

    @property
    def migration_state(self) -> int:
        return self._mig_state

    def _end_session(self) -> None:
        if self._mig_file is not None:
            self._mig_file.disable()
            self._mig_file = None

    async def migration_arc(self, new: int) -> MigrationFile | None:
        """One arc of the VFIO migration FSM (the core walks combinations arc by arc).

        RUNNING <-> RUNNING_P2P: nothing changes (ADIs do no peer-to-peer DMA: SENDs stay inside
        the device's embedded switch). RUNNING_P2P -> STOP: every ADI quiesced at a descriptor
        boundary. STOP -> RUNNING_P2P: the ADIs that were running are enabled again and resume
        at their head. STOP -> STOP_COPY: the state stream is built, its data fd returned.
        STOP -> RESUMING: the ADIs are reset, a data fd for the stream returned. RESUMING ->
        STOP: the stream is checked whole, then loaded; a bad stream fails the arc with EINVAL,
        leaves every ADI reset and disabled and the device in ERROR.
        """
        cur = self._mig_state
        arc = (cur, new)
        if arc in ((RUNNING, RUNNING_P2P), (RUNNING_P2P, RUNNING)):
            self._mig_state = new
            return None
        if arc == (RUNNING_P2P, STOP):
            await self._mig_quiesce()
            self._mig_state = STOP
            return None
        if arc == (STOP, RUNNING_P2P):
            await self._mig_resume()
            self._mig_state = RUNNING_P2P
            return None
        if arc == (STOP, STOP_COPY):
            data = await self._mig_save()
            self._mig_file = MigrationFile(saving=True, data=data)
            self._mig_state = STOP_COPY
            return self._mig_file
        if arc == (STOP_COPY, STOP):
            self._end_session()
            self._mig_state = STOP
            return None
        if arc == (STOP, RESUMING):
            for q in range(self.num_queues):  # a clean, reset ADI behind every queue
                await self._quiesce(q)
            self._was = [None] * self.num_queues
            self._mig_file = MigrationFile(saving=False)
            self._mig_state = RESUMING
            return self._mig_file
        if arc == (RESUMING, STOP):
            assert self._mig_file is not None
            data = self._mig_file.written()
            self._end_session()
            try:
                await self._mig_load(data)
            except (ValueError, PfError) as exc:  # StreamError, a config image, or the device refused
                for q in range(self.num_queues):
                    await self._quiesce(q)
                self._was = [None] * self.num_queues
                self._mig_state = ERROR
                self.log.error("device state rejected: %s", exc)
                raise VfioError(errno.EINVAL, f"device state rejected: {exc}") from exc
            self._mig_state = STOP
            return None
        raise VfioError(errno.EINVAL, f"{state_name(cur)} -> {state_name(new)} is not an arc of the FSM")

    async def _mig_quiesce(self) -> None:
        """STOP: every ADI stops at a descriptor boundary; if one cannot, the others run again."""
        done: list[int] = []
        try:
            for q in range(self.num_queues):
                self._was[q] = await self.pf.adi.quiesce(self.adis[q])
                done.append(q)
        except PfError as exc:
            for q in done:
                if self._was[q] is AdiState.ENABLED:
                    await self.pf.adi.enable(self.adis[q])
            self._was = [None] * self.num_queues
            raise VfioError(errno.EIO, f"quiesce failed: {exc}") from exc

    async def _mig_resume(self) -> None:
        for q in range(self.num_queues):
            if self._queues[q].enabled and self._was[q] is AdiState.ENABLED:
                if self.domain is None:
                    raise VfioError(errno.EIO, f"queue {q}: no IOMMU domain attached to PASID {self.pasid}")
                await self.pf.adi.enable(self.adis[q])
        self._was = [None] * self.num_queues

    def _state(self, snaps: list[AdiSnapshot]) -> mig.VdevState:
        return mig.VdevState(
            type_id=self.mdev_type.type_id,
            config=self.config.read(0, mig.CONFIG_BYTES),
            msix_table=bytes(self._msix),
            msix_pending=tuple(self._pending),
            reject_count=self._reject_count,
            last_reject=int(self._last_reject),
            queues=tuple(
                mig.QueueState(vq.enabled, tuple(vq.regs[r] for r in CONFIG_ORDER), snap)
                for vq, snap in zip(self._queues, snaps, strict=True)
            ),
        )

    async def _mig_save(self) -> bytes:
        snaps = []
        for q in range(self.num_queues):
            was = self._was[q]
            snaps.append(await self.pf.adi.save(self.adis[q], was if was is not None else AdiState.DISABLED))
        data = mig.encode(self._state(snaps))
        self.state_bytes = len(data)
        self.log.info("device state saved: %d bytes", len(data))
        return data

    async def _mig_load(self, data: bytes) -> None:
        st = mig.decode(data, type_id=self.mdev_type.type_id, num_queues=self.num_queues)
        self.config.check_restore(0, st.config)  # ValueError: read-only bits differ
        for q, qs in enumerate(st.queues):  # the guest's registers must describe the ADI it ran
            regs = dict(zip(CONFIG_ORDER, qs.regs, strict=True))
            if qs.enabled:
                c = qs.adi.cfg
                want = {
                    QREG.RING_BASE_LO: c.ring_base & 0xFFFF_FFFF,
                    QREG.RING_BASE_HI: c.ring_base >> 32,
                    QREG.RING_SIZE: c.ring_size,
                    QREG.CPL_BASE_LO: c.cpl_base & 0xFFFF_FFFF,
                    QREG.CPL_BASE_HI: c.cpl_base >> 32,
                }
                bad = [r.name for r, v in want.items() if regs[r] != v]
                if bad:
                    raise mig.StreamError(f"queue {q}: registers {bad} disagree with its ADI snapshot")
        # everything checked: load the ADIs (they stay DISABLED or ERROR until RUNNING)
        for q, qs in enumerate(st.queues):
            if not qs.enabled:
                continue
            adi = self.adis[q]
            snap = replace(qs.adi, sw_group=self.group, sw_addr=self.sw_addrs[q])  # this host's switch port
            await self.pf.adi.load(adi, snap, pasid=self.pasid, ims=self._host_msi[q])
            if self._host_msi[q] is None:  # no vector on this host yet: SET_IRQS programs it
                await self.pf.adi.set_ims(adi, None, masked=True)
        self.config.restore(0, st.config)
        self._msix = bytearray(st.msix_table)
        self._pending = list(st.msix_pending)
        self._reject_count, self._last_reject = st.reject_count, st.last_reject
        for q, qs in enumerate(st.queues):
            self._queues[q].regs = dict(zip(CONFIG_ORDER, qs.regs, strict=True))
            self._queues[q].enabled = qs.enabled
            self._was[q] = qs.adi.state if qs.enabled else None
        self.state_bytes = len(data)
        self.log.info("device state loaded: %d bytes, queues %s", len(data), [qs.enabled for qs in st.queues])
