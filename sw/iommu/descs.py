"""256-bit invalidation descriptors (VT-d §6.5.2), encoded the way Linux ``dmar.c``/``pasid.c`` does."""

from __future__ import annotations

QI_DONE = 2
QI_IN_USE = 1


def _desc(qw0: int, qw1: int = 0, qw2: int = 0, qw3: int = 0) -> bytes:
    return b"".join((q & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little") for q in (qw0, qw1, qw2, qw3))


def cc_global() -> bytes:
    return _desc(0x1 | 1 << 4)


def cc_device(sid: int, fm: int = 0) -> bytes:
    return _desc(0x1 | 3 << 4 | (sid & 0xFFFF) << 32 | (fm & 3) << 48)


def pc_global() -> bytes:
    return _desc(0x7 | 3 << 4)


def pc_domain(did: int) -> bytes:
    return _desc(0x7 | 0 << 4 | (did & 0xFFFF) << 16)


def pc_pasid(did: int, pasid: int) -> bytes:
    return _desc(0x7 | 1 << 4 | (did & 0xFFFF) << 16 | (pasid & 0xFFFFF) << 32)


def iotlb_global() -> bytes:
    return _desc(0x2 | 1 << 4 | 1 << 6 | 1 << 7)


def iotlb_dsi(did: int) -> bytes:
    return _desc(0x2 | 2 << 4 | 1 << 6 | 1 << 7 | (did & 0xFFFF) << 16)


def iotlb_psi(did: int, addr: int, am: int, ih: bool = False) -> bytes:
    return _desc(0x2 | 3 << 4 | 1 << 6 | 1 << 7 | (did & 0xFFFF) << 16, (addr & ~0xFFF) | ih << 6 | (am & 0x3F))


def piotlb_pasid(did: int, pasid: int) -> bytes:
    return _desc(0x6 | 2 << 4 | (did & 0xFFFF) << 16 | (pasid & 0xFFFFF) << 32)


def piotlb_page(did: int, pasid: int, addr: int, am: int, ih: bool = False) -> bytes:
    return _desc(0x6 | 3 << 4 | (did & 0xFFFF) << 16 | (pasid & 0xFFFFF) << 32, (addr & ~0xFFF) | ih << 6 | (am & 0x3F))


def _devtlb_addr(addr: int, size: int) -> tuple[int, bool]:
    """ADDR field + S bit for a power-of-two range (S=1: ADDR bits below the size set to 1)."""
    if size <= 4096:
        return addr & ~0xFFF, False
    k = size.bit_length() - 1  # size = 2^k
    return (addr & ~(size - 1)) | ((1 << (k - 1)) - 1) & ~0xFFF, True


def devtlb_global(sid: int) -> bytes:
    return _desc(0x3 | (sid & 0xFFFF) << 32, 0x7FFF_FFFF_FFFF_F000 | 1)


def devtlb(sid: int, addr: int, size: int) -> bytes:
    a, s = _devtlb_addr(addr, size)
    return _desc(0x3 | (sid & 0xFFFF) << 32, a | s)


def p_devtlb(sid: int, pasid: int, addr: int = 0, size: int = 0) -> bytes:
    """PASID-based dev-TLB invalidation; ``size`` 0 means the whole address space of that PASID."""
    qw0 = 0x8 | (sid & 0xFFFF) << 16 | (pasid & 0xFFFFF) << 32
    if size == 0:
        return _desc(qw0, 0x7FFF_FFFF_FFFF_F000 | 1 << 11)
    a, s = _devtlb_addr(addr, size)
    return _desc(qw0, a | s << 11)


def inv_wait(status_addr: int, data: int = QI_DONE, *, sw: bool = True, irq: bool = False, fn: bool = True) -> bytes:
    return _desc(0x5 | irq << 4 | sw << 5 | fn << 6 | (data & 0xFFFF_FFFF) << 32, status_addr & ~0x3)


def addr_mask_for(addr: int, size: int) -> tuple[int, int]:
    """(aligned address, AM) covering ``[addr, addr+size)`` with one power-of-two range (Linux style)."""
    pages = max(1, (size + 4095) >> 12)
    am = (pages - 1).bit_length()
    while True:
        base = addr & ~((1 << (12 + am)) - 1)
        if base + (1 << (12 + am)) >= addr + size:
            return base, am
        am += 1
