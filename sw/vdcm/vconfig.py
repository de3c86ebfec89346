"""Virtual PCI configuration space of a VDEV, emulated entirely by the VDCM.

A standard type-0 header with the VDEV's own vendor/device IDs, two 64-bit memory BARs with
standard sizing (write all-ones, read back the size mask), a PCI Express capability
(RC-integrated endpoint) and an MSI-X capability whose table and PBA sit in virtual BAR0.
Writes honour per-byte write masks (RO bits ignore writes, as real hardware does).
"""

from __future__ import annotations

from dataclasses import dataclass

from siov_sim.sw.driver import pci

VCFG_SIZE = 4096
PCIE_CAP_OFF = 0x40
MSIX_CAP_OFF = 0x70


@dataclass(frozen=True, slots=True)
class VconfigLayout:
    vendor_id: int
    device_id: int
    subsys_vendor_id: int
    subsys_id: int
    class_code: int  # 24 bits: base, sub, prog-if
    revision: int
    bar0_size: int
    bar2_size: int
    msix_vectors: int
    msix_table_off: int  # in BAR0
    msix_pba_off: int  # in BAR0


class VirtualConfig:
    def __init__(self, layout: VconfigLayout) -> None:
        self.layout = layout
        self._b = bytearray(VCFG_SIZE)
        self._wmask = bytearray(VCFG_SIZE)
        self._build()

    def _put(self, off: int, value: int, size: int, wmask: int = 0) -> None:
        self._b[off : off + size] = value.to_bytes(size, "little")
        self._wmask[off : off + size] = wmask.to_bytes(size, "little")

    def _build(self) -> None:
        lay = self.layout
        self._put(pci.PCI_VENDOR_ID, lay.vendor_id, 2)
        self._put(pci.PCI_DEVICE_ID, lay.device_id, 2)
        # COMMAND: memory space, bus master, INTx disable are writable
        self._put(pci.PCI_COMMAND, 0, 2, pci.PCI_COMMAND_MEMORY | pci.PCI_COMMAND_MASTER | 0x400)
        self._put(pci.PCI_STATUS, pci.PCI_STATUS_CAP_LIST, 2)
        self._put(pci.PCI_REVISION_ID, lay.revision, 1)
        self._put(pci.PCI_CLASS_PROG, lay.class_code, 3)
        self._put(pci.PCI_HEADER_TYPE, 0, 1)
        for index, size in ((0, lay.bar0_size), (2, lay.bar2_size)):
            if size & (size - 1) or size < 4096:
                raise ValueError(f"BAR{index} size {size} must be a power of two >= 4 KiB")
            off = pci.PCI_BASE_ADDRESS_0 + 4 * index
            mask = ~(size - 1) & ((1 << 64) - 1)
            self._put(off, pci.PCI_BASE_ADDRESS_MEM_TYPE_64, 4, mask & 0xFFFF_FFF0)
            self._put(off + 4, 0, 4, mask >> 32)
        self._put(pci.PCI_SUBSYSTEM_VENDOR_ID, lay.subsys_vendor_id, 2)
        self._put(pci.PCI_SUBSYSTEM_ID, lay.subsys_id, 2)
        self._put(pci.PCI_CAPABILITY_LIST, PCIE_CAP_OFF, 1)
        self._put(0x3C, 0, 1, 0xFF)  # interrupt line (scratch for the guest OS)
        # PCI Express capability v2, device/port type 9 = RC integrated endpoint (no link regs).
        self._put(PCIE_CAP_OFF, pci.PCI_CAP_ID_EXP | (MSIX_CAP_OFF << 8) | ((0x2 | (0x9 << 4)) << 16), 4)
        self._put(PCIE_CAP_OFF + 0x04, 1 << 28, 4)  # DevCap: FLR capable
        self._put(PCIE_CAP_OFF + 0x08, 0x2810, 2, 0x7CFF)  # DevCtl: MPS/MRRS/enables writable
        # MSI-X: table size N-1 RO, function mask + enable RW; table/PBA in BAR0 (BIR 0).
        ctrl = (lay.msix_vectors - 1) & pci.PCI_MSIX_FLAGS_QSIZE
        self._put(
            MSIX_CAP_OFF,
            pci.PCI_CAP_ID_MSIX | (ctrl << 16),
            4,
            (pci.PCI_MSIX_FLAGS_MASKALL | pci.PCI_MSIX_FLAGS_ENABLE) << 16,
        )
        self._put(MSIX_CAP_OFF + pci.PCI_MSIX_TABLE, lay.msix_table_off | 0, 4)
        self._put(MSIX_CAP_OFF + pci.PCI_MSIX_PBA, lay.msix_pba_off | 0, 4)

    def read(self, off: int, length: int) -> bytes:
        if off < 0 or off + length > VCFG_SIZE:
            raise ValueError(f"config read 0x{off:x}+{length} out of range")
        return bytes(self._b[off : off + length])

    def write(self, off: int, data: bytes) -> None:
        if off < 0 or off + len(data) > VCFG_SIZE:
            raise ValueError(f"config write 0x{off:x}+{len(data)} out of range")
        for i, byte in enumerate(data):
            m = self._wmask[off + i]
            self._b[off + i] = (self._b[off + i] & ~m) | (byte & m)

    def check_restore(self, off: int, data: bytes) -> None:
        """A saved image may differ from this one only in writable bits (migration: the same
        VDEV type on both hosts has the same read-only fields); ValueError otherwise."""
        if off < 0 or off + len(data) > VCFG_SIZE:
            raise ValueError(f"config image 0x{off:x}+{len(data)} out of range")
        for i, byte in enumerate(data):
            if (byte ^ self._b[off + i]) & ~self._wmask[off + i] & 0xFF:
                raise ValueError(f"config byte 0x{off + i:x} differs in read-only bits")

    def restore(self, off: int, data: bytes) -> None:
        """Load a saved image (checked by :meth:`check_restore`)."""
        self.check_restore(off, data)
        self._b[off : off + len(data)] = data

    def u16(self, off: int) -> int:
        return int.from_bytes(self._b[off : off + 2], "little")

    def bar_addr(self, index: int) -> int:
        off = pci.PCI_BASE_ADDRESS_0 + 4 * index
        return int.from_bytes(self._b[off : off + 8], "little") & ~0xF

    @property
    def msix_enabled(self) -> bool:
        return bool(self.u16(MSIX_CAP_OFF + pci.PCI_MSIX_FLAGS) & pci.PCI_MSIX_FLAGS_ENABLE)

    @property
    def msix_function_masked(self) -> bool:
        return bool(self.u16(MSIX_CAP_OFF + pci.PCI_MSIX_FLAGS) & pci.PCI_MSIX_FLAGS_MASKALL)

    @property
    def bus_master(self) -> bool:
        return bool(self.u16(pci.PCI_COMMAND) & pci.PCI_COMMAND_MASTER)

    def reset(self) -> None:
        """Function-level reset: everything back to power-on values."""
        self._b = bytearray(VCFG_SIZE)
        self._wmask = bytearray(VCFG_SIZE)
        self._build()
