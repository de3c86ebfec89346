"""The contract between the VFIO core and a device driver (``struct vfio_device_ops`` in Linux).

A VDEV of the VDCM (an mdev in Linux) implements :class:`VfioDeviceOps`; the VFIO core
(:mod:`.vfio`) turns ioctls, ``pread``/``pwrite`` and ``mmap`` on the device fd into these calls.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from siov_sim.sw.bus import HostBus, mmio_read32, mmio_read64, mmio_write32, mmio_write64
from siov_sim.sw.driver.iommu_api import IoDomain

#: The eventfd analogue: called once per interrupt.
IrqCallback = Callable[[], None]


class VfioError(Exception):
    """A failed VFIO call; ``errno`` is what the ioctl would return negated (``-EINVAL`` ...)."""

    def __init__(self, err: int, msg: str) -> None:
        super().__init__(f"[{errno.errorcode.get(err, err)}] {msg}")
        self.errno = err


@dataclass(frozen=True, slots=True)
class RegionInfo:
    index: int
    flags: int  # VFIO_REGION_INFO_FLAG_*
    size: int
    sparse_mmap: tuple[tuple[int, int], ...] = field(default_factory=tuple)  # (offset, size) areas


@dataclass(frozen=True, slots=True)
class IrqInfo:
    index: int
    flags: int  # VFIO_IRQ_INFO_*
    count: int


class MmioMapping:
    """A mmap of a device page range: CPU loads/stores go straight to the device (no trap).

    ``hpa`` is the host physical address of the mapped range (inside a PF BAR); in a VM the
    same mapping is reached through EPT, the accesses are identical.
    """

    def __init__(self, bus: HostBus, hpa: int, size: int) -> None:
        self.bus = bus
        self.hpa = hpa
        self.size = size
        self.revoked = False

    def revoke(self) -> None:
        """The device's owner took the pages back (vfio-pci zaps user mmaps on close/reset):
        every later access faults, as a real process gets SIGBUS."""
        self.revoked = True

    def _check(self, off: int, length: int) -> int:
        if self.revoked:
            raise VfioError(errno.EFAULT, "mapping revoked: the device fd was closed (SIGBUS)")
        if off < 0 or off + length > self.size or off % length:
            raise VfioError(errno.EFAULT, f"access 0x{off:x}+{length} outside the {self.size} B mapping")
        return self.hpa + off

    async def write32(self, off: int, value: int) -> None:
        await mmio_write32(self.bus, self._check(off, 4), value)

    async def write64(self, off: int, value: int) -> None:
        await mmio_write64(self.bus, self._check(off, 8), value)

    async def read32(self, off: int) -> int:
        return await mmio_read32(self.bus, self._check(off, 4))

    async def read64(self, off: int) -> int:
        return await mmio_read64(self.bus, self._check(off, 8))


class VfioDeviceOps(Protocol):
    """What a VFIO device driver provides (regions, interrupts, reset, IOMMU attachment)."""

    @property
    def name(self) -> str: ...

    @property
    def num_regions(self) -> int: ...

    @property
    def num_irqs(self) -> int: ...

    def region_info(self, index: int) -> RegionInfo: ...

    async def region_read(self, index: int, off: int, length: int) -> bytes: ...

    async def region_write(self, index: int, off: int, data: bytes) -> None: ...

    def region_mmap(self, index: int, off: int, size: int) -> MmioMapping: ...

    def irq_info(self, index: int) -> IrqInfo: ...

    async def set_irq_callbacks(self, index: int, start: int, callbacks: Sequence[IrqCallback | None]) -> None:
        """Install (callable) or remove (None) the trigger of vectors ``start..``; count 0 = remove all."""

    def mask_irqs(self, index: int, start: int, count: int, mask: bool) -> None: ...

    def trigger_irqs(self, index: int, start: int, count: int) -> None:
        """Loopback trigger (ACTION_TRIGGER | DATA_NONE): signal the callbacks as an interrupt would."""

    async def reset(self) -> None: ...

    async def close_device(self) -> None:
        """Last device fd closed (``vfio_device_ops.close_device``; vfio-pci: disable interrupts,
        reset, zap the user's mmaps) so the next user finds nothing of this one's."""

    async def attach_domain(self, domain: IoDomain) -> None:
        """Attach the device's DMA (its PASID) to an I/O page table."""

    async def replace_domain(self, domain: IoDomain) -> None:
        """Switch an attached device's DMA to another table atomically (iommufd HWPT replace)."""

    async def detach_domain(self) -> None: ...
