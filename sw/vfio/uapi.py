"""Mirror of ``<linux/vfio.h>``: constants, ioctl numbers and struct layouts.

The names are the header's: a class ``VfioFooBar`` is ``struct vfio_foo_bar`` and its fields
carry the C member names (``next`` of a capability is ``header.next``). Struct layouts are
:mod:`struct` formats for the x86-64 ABI; ``tests/sw/test_vfio_uapi.py`` compiles a C program
against ``/usr/include/linux/vfio.h`` and checks every constant, and, for every struct class
here, packs marker values and finds each field at the ``offsetof``/``sizeof`` gcc reports (and
unpacks them back), so
driver code written against this module could issue the same ioctls on ``/dev/vfio`` of a lab
machine.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

# --- ioctl encoding (<asm-generic/ioctl.h>); VFIO uses _IO for everything ------------------------
_IOC_NRBITS = 8
_IOC_TYPEBITS = 8
_IOC_SIZEBITS = 14
_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS
_IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS
_IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS
_IOC_NONE = 0


def _ioc(direction: int, typ: int, nr: int, size: int) -> int:
    return (direction << _IOC_DIRSHIFT) | (typ << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT) | (size << _IOC_SIZESHIFT)


def _io(typ: int, nr: int) -> int:
    return _ioc(_IOC_NONE, typ, nr, 0)


VFIO_API_VERSION = 0

# extensions (VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU)
VFIO_TYPE1_IOMMU = 1
VFIO_SPAPR_TCE_IOMMU = 2
VFIO_TYPE1v2_IOMMU = 3
VFIO_DMA_CC_IOMMU = 4
VFIO_EEH = 5
VFIO_TYPE1_NESTING_IOMMU = 6
VFIO_SPAPR_TCE_v2_IOMMU = 7
VFIO_NOIOMMU_IOMMU = 8
VFIO_UNMAP_ALL = 9
VFIO_UPDATE_VADDR = 10

VFIO_TYPE = ord(";")
VFIO_BASE = 100

VFIO_GET_API_VERSION = _io(VFIO_TYPE, VFIO_BASE + 0)
VFIO_CHECK_EXTENSION = _io(VFIO_TYPE, VFIO_BASE + 1)
VFIO_SET_IOMMU = _io(VFIO_TYPE, VFIO_BASE + 2)
VFIO_GROUP_GET_STATUS = _io(VFIO_TYPE, VFIO_BASE + 3)
VFIO_GROUP_SET_CONTAINER = _io(VFIO_TYPE, VFIO_BASE + 4)
VFIO_GROUP_UNSET_CONTAINER = _io(VFIO_TYPE, VFIO_BASE + 5)
VFIO_GROUP_GET_DEVICE_FD = _io(VFIO_TYPE, VFIO_BASE + 6)
VFIO_DEVICE_GET_INFO = _io(VFIO_TYPE, VFIO_BASE + 7)
VFIO_DEVICE_GET_REGION_INFO = _io(VFIO_TYPE, VFIO_BASE + 8)
VFIO_DEVICE_GET_IRQ_INFO = _io(VFIO_TYPE, VFIO_BASE + 9)
VFIO_DEVICE_SET_IRQS = _io(VFIO_TYPE, VFIO_BASE + 10)
VFIO_DEVICE_RESET = _io(VFIO_TYPE, VFIO_BASE + 11)
VFIO_IOMMU_GET_INFO = _io(VFIO_TYPE, VFIO_BASE + 12)
VFIO_IOMMU_MAP_DMA = _io(VFIO_TYPE, VFIO_BASE + 13)
VFIO_IOMMU_UNMAP_DMA = _io(VFIO_TYPE, VFIO_BASE + 14)
VFIO_DEVICE_FEATURE = _io(VFIO_TYPE, VFIO_BASE + 17)
VFIO_IOMMU_DIRTY_PAGES = _io(VFIO_TYPE, VFIO_BASE + 17)  # container fd: same number, other fd

VFIO_GROUP_FLAGS_VIABLE = 1 << 0
VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1

VFIO_DEVICE_FLAGS_RESET = 1 << 0
VFIO_DEVICE_FLAGS_PCI = 1 << 1
VFIO_DEVICE_FLAGS_CAPS = 1 << 7
VFIO_DEVICE_API_PCI_STRING = "vfio-pci"

VFIO_REGION_INFO_FLAG_READ = 1 << 0
VFIO_REGION_INFO_FLAG_WRITE = 1 << 1
VFIO_REGION_INFO_FLAG_MMAP = 1 << 2
VFIO_REGION_INFO_FLAG_CAPS = 1 << 3
VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1
VFIO_REGION_INFO_CAP_TYPE = 2
VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3

VFIO_IRQ_INFO_EVENTFD = 1 << 0
VFIO_IRQ_INFO_MASKABLE = 1 << 1
VFIO_IRQ_INFO_AUTOMASKED = 1 << 2
VFIO_IRQ_INFO_NORESIZE = 1 << 3

VFIO_IRQ_SET_DATA_NONE = 1 << 0
VFIO_IRQ_SET_DATA_BOOL = 1 << 1
VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2
VFIO_IRQ_SET_ACTION_MASK = 1 << 3
VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4
VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5
VFIO_IRQ_SET_DATA_TYPE_MASK = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD
VFIO_IRQ_SET_ACTION_TYPE_MASK = VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER

# vfio-pci fixed region and irq indexes
VFIO_PCI_BAR0_REGION_INDEX = 0
VFIO_PCI_BAR1_REGION_INDEX = 1
VFIO_PCI_BAR2_REGION_INDEX = 2
VFIO_PCI_BAR3_REGION_INDEX = 3
VFIO_PCI_BAR4_REGION_INDEX = 4
VFIO_PCI_BAR5_REGION_INDEX = 5
VFIO_PCI_ROM_REGION_INDEX = 6
VFIO_PCI_CONFIG_REGION_INDEX = 7
VFIO_PCI_VGA_REGION_INDEX = 8
VFIO_PCI_NUM_REGIONS = 9

VFIO_PCI_INTX_IRQ_INDEX = 0
VFIO_PCI_MSI_IRQ_INDEX = 1
VFIO_PCI_MSIX_IRQ_INDEX = 2
VFIO_PCI_ERR_IRQ_INDEX = 3
VFIO_PCI_REQ_IRQ_INDEX = 4
VFIO_PCI_NUM_IRQS = 5

# type1 IOMMU
VFIO_IOMMU_INFO_PGSIZES = 1 << 0
VFIO_IOMMU_INFO_CAPS = 1 << 1
VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1
VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2
VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3
VFIO_DMA_MAP_FLAG_READ = 1 << 0
VFIO_DMA_MAP_FLAG_WRITE = 1 << 1
VFIO_DMA_MAP_FLAG_VADDR = 1 << 2
VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0
VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1
VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2

VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1 << 0
VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 1 << 1
VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 1 << 2

# VFIO_DEVICE_FEATURE (struct vfio_device_feature) and migration v2
VFIO_DEVICE_FEATURE_MASK = 0xFFFF
VFIO_DEVICE_FEATURE_GET = 1 << 16
VFIO_DEVICE_FEATURE_SET = 1 << 17
VFIO_DEVICE_FEATURE_PROBE = 1 << 18
VFIO_DEVICE_FEATURE_PCI_VF_TOKEN = 0
VFIO_DEVICE_FEATURE_MIGRATION = 1
VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE = 2
VFIO_MIGRATION_STOP_COPY = 1 << 0
VFIO_MIGRATION_P2P = 1 << 1
# enum vfio_device_mig_state
VFIO_DEVICE_STATE_ERROR = 0
VFIO_DEVICE_STATE_STOP = 1
VFIO_DEVICE_STATE_RUNNING = 2
VFIO_DEVICE_STATE_STOP_COPY = 3
VFIO_DEVICE_STATE_RESUMING = 4
VFIO_DEVICE_STATE_RUNNING_P2P = 5

# Not in the uapi header (drivers/vfio/pci/vfio_pci_priv.h), but every vfio-pci user relies on it:
# the file offset of region ``index`` on the device fd.
VFIO_PCI_OFFSET_SHIFT = 40


def VFIO_PCI_INDEX_TO_OFFSET(index: int) -> int:
    return index << VFIO_PCI_OFFSET_SHIFT


def VFIO_PCI_OFFSET_TO_INDEX(off: int) -> int:
    return off >> VFIO_PCI_OFFSET_SHIFT


VFIO_PCI_OFFSET_MASK = (1 << VFIO_PCI_OFFSET_SHIFT) - 1


# --- struct layouts ----------------------------------------------------------------------------
class _Struct:
    """Base for fixed-size structs: ``FMT`` is the little-endian :mod:`struct` layout."""

    FMT: ClassVar[str]

    @classmethod
    def sizeof(cls) -> int:
        return struct.calcsize(cls.FMT)


@dataclass(slots=True)
class VfioInfoCapHeader(_Struct):
    FMT: ClassVar[str] = "<HHI"
    id: int
    version: int
    next: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.id, self.version, self.next)

    @classmethod
    def unpack(cls, buf: bytes | bytearray, off: int = 0) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf, off))


@dataclass(slots=True)
class VfioGroupStatus(_Struct):
    FMT: ClassVar[str] = "<II"
    argsz: int
    flags: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.argsz, self.flags)

    @classmethod
    def unpack(cls, buf: bytes | bytearray) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf))


@dataclass(slots=True)
class VfioDeviceInfo(_Struct):
    FMT: ClassVar[str] = "<IIIII"
    argsz: int
    flags: int
    num_regions: int
    num_irqs: int
    cap_offset: int = 0

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.argsz, self.flags, self.num_regions, self.num_irqs, self.cap_offset)

    @classmethod
    def unpack(cls, buf: bytes | bytearray) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf))


@dataclass(slots=True)
class VfioRegionInfo(_Struct):
    FMT: ClassVar[str] = "<IIIIQQ"
    argsz: int
    flags: int
    index: int
    cap_offset: int
    size: int
    offset: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.argsz, self.flags, self.index, self.cap_offset, self.size, self.offset)

    @classmethod
    def unpack(cls, buf: bytes | bytearray) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf))


@dataclass(frozen=True, slots=True)
class VfioRegionSparseMmapArea(_Struct):
    FMT: ClassVar[str] = "<QQ"
    offset: int
    size: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.offset, self.size)

    @classmethod
    def unpack(cls, buf: bytes | bytearray, off: int = 0) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf, off))


@dataclass(slots=True)
class VfioRegionInfoCapSparseMmap(_Struct):
    """``struct vfio_region_info_cap_sparse_mmap``: header, nr_areas, reserved, areas[]."""

    FMT: ClassVar[str] = "<HHIII"
    areas: list[VfioRegionSparseMmapArea]
    next: int = 0

    def pack(self) -> bytes:
        head = struct.pack(self.FMT, VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, self.next, len(self.areas), 0)
        return head + b"".join(a.pack() for a in self.areas)

    @classmethod
    def unpack(cls, buf: bytes | bytearray, off: int = 0) -> Self:
        cap_id, _version, nxt, nr, _rsv = struct.unpack_from(cls.FMT, buf, off)
        if cap_id != VFIO_REGION_INFO_CAP_SPARSE_MMAP:
            raise ValueError(f"capability {cap_id} is not SPARSE_MMAP")
        base = off + struct.calcsize(cls.FMT)
        size = VfioRegionSparseMmapArea.sizeof()
        areas = [VfioRegionSparseMmapArea.unpack(buf, base + size * i) for i in range(nr)]
        return cls(areas=areas, next=nxt)


@dataclass(slots=True)
class VfioIrqInfo(_Struct):
    FMT: ClassVar[str] = "<IIII"
    argsz: int
    flags: int
    index: int
    count: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.argsz, self.flags, self.index, self.count)

    @classmethod
    def unpack(cls, buf: bytes | bytearray) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf))


@dataclass(slots=True)
class VfioIrqSet(_Struct):
    """``struct vfio_irq_set`` header; ``data[]`` follows (u8 bools or s32 eventfds)."""

    FMT: ClassVar[str] = "<IIIII"
    argsz: int
    flags: int
    index: int
    start: int
    count: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.argsz, self.flags, self.index, self.start, self.count)

    @classmethod
    def unpack(cls, buf: bytes | bytearray) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf))


@dataclass(slots=True)
class VfioIommuType1Info(_Struct):
    FMT: ClassVar[str] = "<IIQI4x"
    argsz: int
    flags: int
    iova_pgsizes: int
    cap_offset: int = 0

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.argsz, self.flags, self.iova_pgsizes, self.cap_offset)

    @classmethod
    def unpack(cls, buf: bytes | bytearray) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf))


@dataclass(frozen=True, slots=True)
class VfioIovaRange(_Struct):
    FMT: ClassVar[str] = "<QQ"
    start: int
    end: int  # inclusive, as in the kernel

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.start, self.end)

    @classmethod
    def unpack(cls, buf: bytes | bytearray, off: int = 0) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf, off))


@dataclass(slots=True)
class VfioIommuType1InfoCapIovaRange(_Struct):
    FMT: ClassVar[str] = "<HHIII"
    iova_ranges: list[VfioIovaRange]
    next: int = 0

    def pack(self) -> bytes:
        head = struct.pack(self.FMT, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, self.next, len(self.iova_ranges), 0)
        return head + b"".join(r.pack() for r in self.iova_ranges)

    @classmethod
    def unpack(cls, buf: bytes | bytearray, off: int = 0) -> Self:
        cap_id, _version, nxt, nr, _rsv = struct.unpack_from(cls.FMT, buf, off)
        if cap_id != VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE:
            raise ValueError(f"capability {cap_id} is not IOVA_RANGE")
        base = off + struct.calcsize(cls.FMT)
        ranges = [VfioIovaRange.unpack(buf, base + VfioIovaRange.sizeof() * i) for i in range(nr)]
        return cls(iova_ranges=ranges, next=nxt)


@dataclass(slots=True)
class VfioIommuType1InfoDmaAvail(_Struct):
    """``struct vfio_iommu_type1_info_dma_avail``: header, then the DMA mappings still allowed."""

    FMT: ClassVar[str] = "<HHII"
    avail: int
    next: int = 0

    def pack(self) -> bytes:
        return struct.pack(self.FMT, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, self.next, self.avail)

    @classmethod
    def unpack(cls, buf: bytes | bytearray, off: int = 0) -> Self:
        cap_id, _version, nxt, avail = struct.unpack_from(cls.FMT, buf, off)
        if cap_id != VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL:
            raise ValueError(f"capability {cap_id} is not DMA_AVAIL")
        return cls(avail=avail, next=nxt)


@dataclass(slots=True)
class VfioIommuType1DmaMap(_Struct):
    FMT: ClassVar[str] = "<IIQQQ"
    argsz: int
    flags: int
    vaddr: int
    iova: int
    size: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.argsz, self.flags, self.vaddr, self.iova, self.size)

    @classmethod
    def unpack(cls, buf: bytes | bytearray) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf))


@dataclass(slots=True)
class VfioIommuType1DmaUnmap(_Struct):
    FMT: ClassVar[str] = "<IIQQ"
    argsz: int
    flags: int
    iova: int
    size: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.argsz, self.flags, self.iova, self.size)

    @classmethod
    def unpack(cls, buf: bytes | bytearray) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf))


@dataclass(slots=True)
class VfioDeviceFeature(_Struct):
    """``struct vfio_device_feature`` header; the feature's ``data[]`` follows."""

    FMT: ClassVar[str] = "<II"
    argsz: int
    flags: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.argsz, self.flags)

    @classmethod
    def unpack(cls, buf: bytes | bytearray, off: int = 0) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf, off))


@dataclass(slots=True)
class VfioDeviceFeatureMigration(_Struct):
    """``struct vfio_device_feature_migration``: VFIO_MIGRATION_* flags the device supports."""

    FMT: ClassVar[str] = "<Q"
    flags: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.flags)

    @classmethod
    def unpack(cls, buf: bytes | bytearray, off: int = 0) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf, off))


@dataclass(slots=True)
class VfioDeviceFeatureMigState(_Struct):
    """``struct vfio_device_feature_mig_state``: the state to go to / the state now, and the data
    fd a SET returns when the arc starts a data transfer session (-1 otherwise)."""

    FMT: ClassVar[str] = "<Ii"
    device_state: int
    data_fd: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.device_state, self.data_fd)

    @classmethod
    def unpack(cls, buf: bytes | bytearray, off: int = 0) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf, off))


@dataclass(slots=True)
class VfioIommuType1DirtyBitmap(_Struct):
    """``struct vfio_iommu_type1_dirty_bitmap`` header (VFIO_IOMMU_DIRTY_PAGES); ``data[]`` holds a
    :class:`VfioIommuType1DirtyBitmapGet` for GET_BITMAP."""

    FMT: ClassVar[str] = "<II"
    argsz: int
    flags: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.argsz, self.flags)

    @classmethod
    def unpack(cls, buf: bytes | bytearray, off: int = 0) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf, off))


@dataclass(slots=True)
class VfioBitmap(_Struct):
    """``struct vfio_bitmap``: ``data`` is the user pointer of the bitmap (one bit per page)."""

    FMT: ClassVar[str] = "<QQQ"
    pgsize: int
    size: int
    data: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.pgsize, self.size, self.data)

    @classmethod
    def unpack(cls, buf: bytes | bytearray, off: int = 0) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf, off))


@dataclass(slots=True)
class VfioIommuType1DirtyBitmapGet(_Struct):
    """``struct vfio_iommu_type1_dirty_bitmap_get``: the range and its ``struct vfio_bitmap``
    (flattened; :attr:`C_MEMBERS` names the C members of the nested fields)."""

    FMT: ClassVar[str] = "<QQQQQ"
    C_MEMBERS: ClassVar[dict[str, str]] = {
        "bitmap_pgsize": "bitmap.pgsize",
        "bitmap_size": "bitmap.size",
        "bitmap_data": "bitmap.data",
    }
    iova: int
    size: int
    bitmap_pgsize: int
    bitmap_size: int
    bitmap_data: int

    def pack(self) -> bytes:
        return struct.pack(self.FMT, self.iova, self.size, self.bitmap_pgsize, self.bitmap_size, self.bitmap_data)

    @classmethod
    def unpack(cls, buf: bytes | bytearray, off: int = 0) -> Self:
        return cls(*struct.unpack_from(cls.FMT, buf, off))
