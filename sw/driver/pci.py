"""PCI configuration-space helpers (names from Linux ``include/uapi/linux/pci_regs.h``).

Capability walks go through :meth:`HostBus.cfg_read` only, as ``pci_find_capability()``,
``pci_find_ext_capability()`` and ``pci_find_dvsec_capability()`` do in Linux.
"""

from __future__ import annotations

from dataclasses import dataclass

from siov_sim.sw.bus import HostBus

PCI_VENDOR_ID = 0x00
PCI_DEVICE_ID = 0x02
PCI_COMMAND = 0x04
PCI_COMMAND_MEMORY = 0x2
PCI_COMMAND_MASTER = 0x4
PCI_STATUS = 0x06
PCI_STATUS_CAP_LIST = 0x10
PCI_REVISION_ID = 0x08
PCI_CLASS_PROG = 0x09
PCI_HEADER_TYPE = 0x0E
PCI_BASE_ADDRESS_0 = 0x10
PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04
PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08
PCI_BASE_ADDRESS_MEM_MASK = ~0xF
PCI_SUBSYSTEM_VENDOR_ID = 0x2C
PCI_SUBSYSTEM_ID = 0x2E
PCI_CAPABILITY_LIST = 0x34
PCI_INTERRUPT_PIN = 0x3D

PCI_CAP_ID_EXP = 0x10
PCI_EXP_DEVCAP = 4
PCI_EXP_DEVCAP_FLR = 1 << 28
PCI_EXP_DEVCTL = 8
PCI_EXP_DEVCTL_BCR_FLR = 0x8000
PCI_EXP_DEVSTA = 0x0A
PCI_EXP_DEVSTA_TRPND = 0x20
PCI_CAP_ID_MSIX = 0x11
PCI_MSIX_FLAGS = 2
PCI_MSIX_FLAGS_QSIZE = 0x07FF
PCI_MSIX_FLAGS_MASKALL = 0x4000
PCI_MSIX_FLAGS_ENABLE = 0x8000
PCI_MSIX_TABLE = 4
PCI_MSIX_PBA = 8
PCI_MSIX_ENTRY_SIZE = 16
PCI_MSIX_ENTRY_VECTOR_CTRL = 12
PCI_MSIX_ENTRY_CTRL_MASKBIT = 1

PCI_CFG_SPACE_SIZE = 256
PCI_CFG_SPACE_EXP_SIZE = 4096

PCI_EXT_CAP_ID_PASID = 0x1B
# Advanced Error Reporting (Linux pci_regs.h names)
PCI_EXT_CAP_ID_ERR = 0x01
PCI_ERR_UNCOR_STATUS = 0x04
PCI_ERR_UNCOR_MASK = 0x08
PCI_ERR_UNCOR_SEVER = 0x0C
PCI_ERR_COR_STATUS = 0x10
PCI_ERR_COR_MASK = 0x14
PCI_ERR_CAP = 0x18
PCI_ERR_CAP_FEP_MASK = 0x1F
PCI_ERR_CAP_PREFIX_LOG_PRESENT = 0x800
PCI_ERR_HEADER_LOG = 0x1C
PCI_ERR_PREFIX_LOG = 0x38
PCI_EXP_DEVCTL_CERE = 0x1
PCI_EXP_DEVCTL_NFERE = 0x2
PCI_EXP_DEVCTL_FERE = 0x4
PCI_EXP_DEVCTL_URRE = 0x8
PCI_EXT_CAP_ID_DVSEC = 0x23
PCI_PASID_CAP = 0x04
PCI_PASID_CAP_EXEC = 0x02
PCI_PASID_CAP_PRIV = 0x04
PCI_PASID_CTRL = 0x06
PCI_PASID_CTRL_ENABLE = 0x01
PCI_PASID_CTRL_EXEC = 0x02
PCI_PASID_CTRL_PRIV = 0x04
PCI_DVSEC_HEADER1 = 0x4
PCI_DVSEC_HEADER2 = 0x8

PCI_VENDOR_ID_INTEL = 0x8086
PCI_DVSEC_ID_INTEL_SIOV = 0x0005
# Intel SIOV DVSEC registers (offsets from the DVSEC start, reference/siov.md)
SIOV_DVSEC_FUNC_DEP = 0x0A
SIOV_DVSEC_FLAGS = 0x0B
SIOV_DVSEC_FLAGS_HOMOGENEOUS = 0x1
SIOV_DVSEC_SUPP_PAGE_SIZES = 0x0C
SIOV_DVSEC_SYS_PAGE_SIZE = 0x10
SIOV_DVSEC_CAP = 0x14
SIOV_DVSEC_CAP_IMS = 0x1


def bdf_str(bdf: int) -> str:
    return f"{bdf >> 8:02x}:{(bdf >> 3) & 0x1F:02x}.{bdf & 7}"


async def cfg_read8(bus: HostBus, bdf: int, off: int) -> int:
    return (await bus.cfg_read(bdf, off, 1))[0]


async def cfg_read16(bus: HostBus, bdf: int, off: int) -> int:
    return int.from_bytes(await bus.cfg_read(bdf, off, 2), "little")


async def cfg_read32(bus: HostBus, bdf: int, off: int) -> int:
    return int.from_bytes(await bus.cfg_read(bdf, off, 4), "little")


async def cfg_write16(bus: HostBus, bdf: int, off: int, value: int) -> None:
    await bus.cfg_write(bdf, off, (value & 0xFFFF).to_bytes(2, "little"))


async def cfg_write32(bus: HostBus, bdf: int, off: int, value: int) -> None:
    await bus.cfg_write(bdf, off, (value & 0xFFFF_FFFF).to_bytes(4, "little"))


async def find_capability(bus: HostBus, bdf: int, cap_id: int) -> int | None:
    """Walk the standard capability list (``pci_find_capability``); ``None`` if absent."""
    if not (await cfg_read16(bus, bdf, PCI_STATUS)) & PCI_STATUS_CAP_LIST:
        return None
    pos = (await cfg_read8(bus, bdf, PCI_CAPABILITY_LIST)) & ~3
    for _ in range(48):  # bound against loops, as the kernel's PCI_FIND_CAP_TTL
        if pos < 0x40:
            return None
        cid = await cfg_read8(bus, bdf, pos)
        if cid == 0xFF:
            return None
        if cid == cap_id:
            return pos
        pos = (await cfg_read8(bus, bdf, pos + 1)) & ~3
    return None


async def ext_capabilities(bus: HostBus, bdf: int) -> list[tuple[int, int]]:
    """All extended capabilities as ``(offset, id)``, in list order, starting at 0x100."""
    out: list[tuple[int, int]] = []
    pos = PCI_CFG_SPACE_SIZE
    ttl = (PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) // 8
    while pos and ttl:
        header = await cfg_read32(bus, bdf, pos)
        if header in (0, 0xFFFF_FFFF):
            break
        out.append((pos, header & 0xFFFF))
        nxt = (header >> 20) & 0xFFC
        if nxt and nxt < PCI_CFG_SPACE_SIZE:
            break
        pos = nxt
        ttl -= 1
    return out


async def find_ext_capability(bus: HostBus, bdf: int, cap_id: int) -> int | None:
    for pos, cid in await ext_capabilities(bus, bdf):
        if cid == cap_id:
            return pos
    return None


async def find_dvsec_capability(bus: HostBus, bdf: int, vendor: int, dvsec_id: int) -> int | None:
    """``pci_find_dvsec_capability()``: DVSEC (0x23) whose header-1 vendor and header-2 ID match."""
    for pos, cid in await ext_capabilities(bus, bdf):
        if cid != PCI_EXT_CAP_ID_DVSEC:
            continue
        h1 = await cfg_read32(bus, bdf, pos + PCI_DVSEC_HEADER1)
        h2 = await cfg_read16(bus, bdf, pos + PCI_DVSEC_HEADER2)
        if h1 & 0xFFFF == vendor and h2 == dvsec_id:
            return pos
    return None


@dataclass(frozen=True, slots=True)
class Bar:
    index: int
    addr: int
    size: int
    is64: bool
    prefetch: bool


async def read_bars(bus: HostBus, bdf: int) -> dict[int, Bar]:
    """Addresses and sizes of the memory BARs, sized the standard way (decode off while sizing)."""
    cmd = await cfg_read16(bus, bdf, PCI_COMMAND)
    await cfg_write16(bus, bdf, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY)
    bars: dict[int, Bar] = {}
    i = 0
    try:
        while i < 6:
            off = PCI_BASE_ADDRESS_0 + 4 * i
            lo = await cfg_read32(bus, bdf, off)
            if lo & 1:  # I/O BAR: not used by this device
                i += 1
                continue
            is64 = bool(lo & PCI_BASE_ADDRESS_MEM_TYPE_64)
            await cfg_write32(bus, bdf, off, 0xFFFF_FFFF)
            mask = await cfg_read32(bus, bdf, off)
            await cfg_write32(bus, bdf, off, lo)
            addr = lo & 0xFFFF_FFF0
            size_mask = mask & 0xFFFF_FFF0
            if is64:
                hi = await cfg_read32(bus, bdf, off + 4)
                await cfg_write32(bus, bdf, off + 4, 0xFFFF_FFFF)
                mask_hi = await cfg_read32(bus, bdf, off + 4)
                await cfg_write32(bus, bdf, off + 4, hi)
                addr |= hi << 32
                size_mask |= mask_hi << 32
                width = 64
            else:
                width = 32
            if size_mask:
                size = ((~size_mask) & ((1 << width) - 1)) + 1
                bars[i] = Bar(i, addr, size, is64, bool(lo & PCI_BASE_ADDRESS_MEM_PREFETCH))
            i += 2 if is64 else 1
    finally:
        await cfg_write16(bus, bdf, PCI_COMMAND, cmd)
    return bars
