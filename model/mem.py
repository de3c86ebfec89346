"""Simulated host memory: a sparse, page-backed byte store plus a page allocator.

Everything the host keeps in RAM lives here: IOMMU tables, descriptor rings, data buffers.
The IOMMU model reads its tables through :class:`HostMemory` synchronously (a table walk is
done by the IOMMU's own hardware, it does not travel as a TLP); the root complex maps the same
object into its address space so device DMA lands in the same bytes.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
_PAGE_MASK = PAGE_SIZE - 1


class BusError(Exception):
    """An access outside the populated host memory range (the model of a master abort)."""

    def __init__(self, addr: int, length: int) -> None:
        super().__init__(f"host memory access outside RAM: addr=0x{addr:x} len={length}")
        self.addr = addr
        self.length = length


@dataclass(slots=True)
class HostMemory:
    """Byte-addressable RAM at ``[base, base + size)``; pages are created on first write.

    Reads of never-written pages return zeros, as freshly allocated zeroed memory does.
    Accesses outside the range raise :class:`BusError`.
    """

    base: int = 0
    size: int = 1 << 32
    _pages: dict[int, bytearray] = field(default_factory=dict, repr=False)

    def contains(self, addr: int, length: int = 1) -> bool:
        return self.base <= addr and addr + length <= self.base + self.size and length >= 0

    def _check(self, addr: int, length: int) -> None:
        if not self.contains(addr, length):
            raise BusError(addr, length)

    def read(self, addr: int, length: int) -> bytes:
        self._check(addr, length)
        off = addr & _PAGE_MASK
        if off + length <= PAGE_SIZE:  # fast path: inside one page
            page = self._pages.get(addr >> PAGE_SHIFT)
            return bytes(length) if page is None else bytes(page[off : off + length])
        out = bytearray()
        while length:
            off = addr & _PAGE_MASK
            n = min(length, PAGE_SIZE - off)
            page = self._pages.get(addr >> PAGE_SHIFT)
            out += bytes(n) if page is None else page[off : off + n]
            addr += n
            length -= n
        return bytes(out)

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        length = len(data)
        self._check(addr, length)
        pos = 0
        while pos < length:
            off = addr & _PAGE_MASK
            n = min(length - pos, PAGE_SIZE - off)
            pfn = addr >> PAGE_SHIFT
            page = self._pages.get(pfn)
            if page is None:
                page = self._pages[pfn] = bytearray(PAGE_SIZE)
            page[off : off + n] = data[pos : pos + n]
            addr += n
            pos += n

    def read_u32(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), "little")

    def read_u64(self, addr: int) -> int:
        off = addr & _PAGE_MASK
        if off <= PAGE_SIZE - 8 and self.base <= addr < self.base + self.size - 7:  # hot path: table walks
            page = self._pages.get(addr >> PAGE_SHIFT)
            return 0 if page is None else int.from_bytes(page[off : off + 8], "little")
        return int.from_bytes(self.read(addr, 8), "little")

    def write_u32(self, addr: int, value: int) -> None:
        self.write(addr, (value & 0xFFFF_FFFF).to_bytes(4, "little"))

    def write_u64(self, addr: int, value: int) -> None:
        self.write(addr, (value & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little"))

    def fill(self, addr: int, length: int, byte: int = 0) -> None:
        self.write(addr, bytes([byte]) * length)

    def pages_touched(self) -> int:
        return len(self._pages)

    def nonzero_pages(self, lo: int, hi: int) -> list[int]:
        """Page numbers in ``[lo, hi)`` whose content may differ from zero (sorted)."""
        return sorted(p for p in self._pages if lo >> PAGE_SHIFT <= p < (hi + _PAGE_MASK) >> PAGE_SHIFT)


class FlatHostMemory(HostMemory):
    """:class:`HostMemory` stored in one flat anonymous mapping (private, lazily populated).

    Same behaviour as the sparse store (untouched memory reads as zero, :class:`BusError`
    outside ``[base, base + size)``), but every byte has a fixed place in one buffer, so code
    outside Python (the fast link's C++ host port, ``tb/fast/``) can serve DMA from the very
    same bytes: :attr:`buffer_address` is the host-physical ``base`` in this process's memory.
    The kernel commits a page only when it is first written, so a 2 GiB RAM costs what is used.
    """

    __slots__ = ("_addr", "_end", "_mm", "_view")

    def __init__(self, base: int = 0, size: int = 1 << 31) -> None:
        if size <= 0 or size & _PAGE_MASK or base & _PAGE_MASK:
            raise ValueError("flat host memory must be a positive, page-aligned range")
        super().__init__(base, size)
        self._end = base + size
        self._mm = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._view = memoryview(self._mm)
        import ctypes  # only here: the address is what the C++ side needs

        self._addr = ctypes.addressof(ctypes.c_char.from_buffer(self._mm))

    @property
    def buffer_address(self) -> int:
        """Process address of host-physical ``base`` (valid while this object lives)."""
        return self._addr

    def read(self, addr: int, length: int) -> bytes:
        off = addr - self.base
        if off < 0 or length < 0 or addr + length > self._end:
            raise BusError(addr, length)
        return self._mm[off : off + length]

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        off = addr - self.base
        n = len(data)
        if off < 0 or addr + n > self._end:
            raise BusError(addr, n)
        self._view[off : off + n] = data

    def read_u64(self, addr: int) -> int:
        off = addr - self.base
        if off < 0 or addr + 8 > self._end:
            raise BusError(addr, 8)
        return int.from_bytes(self._mm[off : off + 8], "little")

    def pages_touched(self) -> int:
        return len(self.nonzero_pages(self.base, self._end))

    def nonzero_pages(self, lo: int, hi: int) -> list[int]:
        import numpy as np

        lo, hi = max(lo, self.base), min(hi, self._end)
        first, last = lo >> PAGE_SHIFT, (hi + _PAGE_MASK) >> PAGE_SHIFT
        out: list[int] = []
        chunk = 1 << 14  # pages per scan step (64 MiB): reading untouched pages commits nothing
        for p in range(first, last, chunk):
            n = min(chunk, last - p)
            a = np.frombuffer(self._mm, dtype=np.uint64, count=n * PAGE_SIZE // 8,
                              offset=(p << PAGE_SHIFT) - self.base)
            nz = np.flatnonzero(a.reshape(n, PAGE_SIZE // 8).any(axis=1))
            out += (nz + p).tolist()
        return out


class OutOfMemory(Exception):
    """The allocator has no free range of the requested size."""


@dataclass(slots=True)
class PageAllocator:
    """First-fit allocator of page-aligned ranges inside ``[base, base + size)``.

    Used by host software for tables, rings and buffers. ``in_use()`` lets tests prove that
    create/remove churn leaks no page.
    """

    base: int
    size: int
    _free: list[tuple[int, int]] = field(default_factory=list, repr=False)
    _used: dict[int, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.base & _PAGE_MASK or self.size & _PAGE_MASK:
            raise ValueError("allocator range must be page aligned")
        self._free = [(self.base, self.size)]

    def alloc(self, size: int, align: int = PAGE_SIZE) -> int:
        if size <= 0:
            raise ValueError("allocation size must be positive")
        if align < PAGE_SIZE or align & (align - 1):
            raise ValueError("alignment must be a power of two >= 4 KiB")
        size = (size + _PAGE_MASK) & ~_PAGE_MASK
        for i, (start, length) in enumerate(self._free):
            addr = (start + align - 1) & ~(align - 1)
            pad = addr - start
            if pad + size <= length:
                del self._free[i]
                if pad:
                    self._free.insert(i, (start, pad))
                    i += 1
                rest = length - pad - size
                if rest:
                    self._free.insert(i, (addr + size, rest))
                self._used[addr] = size
                return addr
        raise OutOfMemory(f"no free range of {size} bytes aligned to {align}")

    def free(self, addr: int) -> None:
        size = self._used.pop(addr, None)
        if size is None:
            raise ValueError(f"0x{addr:x} was not allocated (or freed twice)")
        self._free.append((addr, size))
        self._free.sort()
        merged: list[tuple[int, int]] = []
        for start, length in self._free:
            if merged and merged[-1][0] + merged[-1][1] == start:
                merged[-1] = (merged[-1][0], merged[-1][1] + length)
            else:
                merged.append((start, length))
        self._free = merged

    def in_use(self) -> int:
        """Bytes currently allocated."""
        return sum(self._used.values())

    def allocations(self) -> int:
        return len(self._used)
