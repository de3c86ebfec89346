"""Page-table builder for first-stage (x86-64) and second-stage (EPT-like) IOMMU tables.

Tables are 4 KiB pages in host memory written with plain stores, as the Linux driver does. The
address *stored* in an entry may differ from the host-physical address the CPU writes to: under
nested translation the first-stage tables sit at guest-physical addresses. A :class:`TableSpace`
provides both (default: :class:`HostTableSpace`, stored == host physical).

``map`` never needs an invalidation (not-present -> present); ``unmap`` returns the table pages that
became empty, which the caller frees only *after* invalidating the IOTLB (teardown order).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from siov_sim.model.mem import HostMemory, PageAllocator

PAGE = 4096
_ZERO_PAGE = bytes(PAGE)
ADDR_MASK = 0x000F_FFFF_FFFF_F000

FS_P, FS_RW, FS_US, FS_A, FS_D, FS_PS = 1, 2, 4, 1 << 5, 1 << 6, 1 << 7
SS_R, SS_W, SS_PS = 1, 2, 1 << 7
SS_D = 1 << 9  # second-stage Dirty flag, set by the IOMMU when SSADE is on (VT-d 3.x, 9.8)


class AlreadyMapped(ValueError):
    """The range (or part of it) is mapped already: Linux's IOMMU API answers ``-EEXIST``."""


class PteFormat(Enum):
    FIRST_STAGE = "fs"
    SECOND_STAGE = "ss"


class TableSpace(Protocol):
    def alloc_table(self) -> tuple[int, int]:
        """A zeroed 4 KiB table: (address stored in entries, host-physical address)."""
        ...

    def free_table(self, stored: int) -> None: ...


class HostTableSpace:
    """Tables in host memory, referenced by host-physical address."""

    def __init__(self, mem: HostMemory, alloc: PageAllocator) -> None:
        self.mem = mem
        self.alloc = alloc

    def alloc_table(self) -> tuple[int, int]:
        hpa = self.alloc.alloc(PAGE)
        self.mem.fill(hpa, PAGE, 0)
        return hpa, hpa

    def free_table(self, stored: int) -> None:
        self.alloc.free(stored)


@dataclass(frozen=True, slots=True)
class Mapping:
    """Result of a software lookup: output address of ``iova`` plus the leaf's properties."""

    pa: int
    page_shift: int
    read: bool
    write: bool
    user: bool


class PageTable:
    """One I/O page table (``levels`` 4/5 for first stage, 3/4/5 for second stage)."""

    def __init__(
        self,
        mem: HostMemory,
        space: TableSpace,
        fmt: PteFormat,
        levels: int,
        page_shifts: tuple[int, ...] = (12, 21, 30),
        *,
        preset_ad: bool = False,
    ) -> None:
        if fmt is PteFormat.FIRST_STAGE and levels not in (4, 5):
            raise ValueError("first-stage tables have 4 or 5 levels")
        if fmt is PteFormat.SECOND_STAGE and levels not in (3, 4, 5):
            raise ValueError("second-stage tables have 3, 4 or 5 levels")
        self.mem = mem
        self.space = space
        self.fmt = fmt
        self.levels = levels
        self.page_shifts = tuple(sorted(s for s in page_shifts if s in (12, 21, 30)))
        self.preset_ad = preset_ad
        self._hpa: dict[int, int] = {}  # stored table address -> host physical
        self.root, root_hpa = space.alloc_table()
        self._hpa[self.root] = root_hpa

    @property
    def input_bits(self) -> int:
        return 12 + 9 * self.levels

    def tables(self) -> list[int]:
        return list(self._hpa)

    # ------------------------------------------------------------------ entry encoding
    def _nonleaf(self, stored: int) -> int:
        if self.fmt is PteFormat.FIRST_STAGE:
            return stored | FS_P | FS_RW | FS_US | (FS_A if self.preset_ad else 0)
        return stored | SS_R | SS_W

    def _leaf(self, pa: int, shift: int, read: bool, write: bool, user: bool) -> int:
        ps = shift > 12
        if self.fmt is PteFormat.FIRST_STAGE:
            v = pa | FS_P | (FS_RW if write else 0) | (FS_US if user else 0) | (FS_PS if ps else 0)
            if self.preset_ad:
                v |= FS_A | (FS_D if write else 0)
            return v
        return pa | (SS_R if read else 0) | (SS_W if write else 0) | (SS_PS if ps else 0)

    def _present(self, v: int) -> bool:
        return bool(v & 1) if self.fmt is PteFormat.FIRST_STAGE else bool(v & 3)

    @staticmethod
    def _index(iova: int, level: int) -> int:
        return (iova >> (3 + 9 * level)) & 0x1FF

    # ------------------------------------------------------------------ map / unmap
    def _check_range(self, iova: int, size: int) -> None:
        if iova < 0:
            raise ValueError(f"negative address -0x{-iova:x}")
        if size <= 0 or size % PAGE or iova % PAGE:
            raise ValueError(f"range 0x{iova:x}+0x{size:x} not 4 KiB aligned")
        limit = 1 << self.input_bits
        canon = iova
        if self.fmt is PteFormat.FIRST_STAGE and iova >> (self.input_bits - 1):
            canon = iova & (limit - 1)  # upper-half canonical addresses index like their low bits
            if iova >> self.input_bits != (1 << (64 - self.input_bits)) - 1:
                raise ValueError(f"0x{iova:x} is not canonical")
        if canon + size > limit:
            raise ValueError(f"range 0x{iova:x}+0x{size:x} beyond {self.input_bits}-bit input space")

    def map(self, iova: int, pa: int, size: int, *, read: bool = True, write: bool = True, user: bool = True) -> None:
        """Map ``[iova, iova+size)`` to ``[pa, ...)``, using 2M/1G leaves where aligned."""
        self._check_range(iova, size)
        if pa % PAGE or pa < 0:
            raise ValueError("physical address not 4 KiB aligned")
        done = 0
        try:
            while done < size:
                v, p, rest = iova + done, pa + done, size - done
                shift = 12
                for s in reversed(self.page_shifts):
                    if not v % (1 << s) and not p % (1 << s) and rest >= 1 << s:
                        shift = s
                        break
                self._map_one(v, p, shift, read, write, user)
                done += 1 << shift
        except ValueError:
            # All or nothing: take back what this call mapped (never visible to a walk, since
            # nothing ran in between), so the caller has no half-made mapping to track.
            if done:
                self.free_tables(self.unmap(iova, done))
            raise

    def _map_one(self, iova: int, pa: int, shift: int, read: bool, write: bool, user: bool) -> None:
        mem = self.mem
        table = self.root
        leaf_level = (shift - 12) // 9 + 1
        for level in range(self.levels, leaf_level, -1):
            ea = self._hpa[table] + 8 * self._index(iova, level)
            v = mem.read_u64(ea)
            if self._present(v):
                if level <= 3 and v & FS_PS:
                    raise AlreadyMapped(f"0x{iova:x} already mapped by a large page")
                table = v & ADDR_MASK
            else:
                stored, hpa = self.space.alloc_table()
                self._hpa[stored] = hpa
                mem.write_u64(ea, self._nonleaf(stored))
                table = stored
        ea = self._hpa[table] + 8 * self._index(iova, leaf_level)
        if self._present(mem.read_u64(ea)):
            raise AlreadyMapped(f"0x{iova:x} already mapped")
        mem.write_u64(ea, self._leaf(pa, shift, read, write, user))

    def unmap(self, iova: int, size: int) -> list[int]:
        """Clear the leaves covering the range; returns emptied tables (free after invalidation).

        A large page must be unmapped whole; unmapping part of one raises ``ValueError``.
        """
        self._check_range(iova, size)
        freed: list[int] = []
        end = iova + size
        v = iova
        while v < end:
            step = self._unmap_at(v, end, freed)
            v += step
        return freed

    def _unmap_at(self, iova: int, end: int, freed: list[int]) -> int:
        mem = self.mem
        path: list[tuple[int, int]] = []  # (table stored addr, entry address)
        table = self.root
        for level in range(self.levels, 0, -1):
            ea = self._hpa[table] + 8 * self._index(iova, level)
            path.append((table, ea))
            v = mem.read_u64(ea)
            span = 1 << (3 + 9 * level)
            if not self._present(v):
                return span - (iova & (span - 1))  # skip the unmapped span
            if level == 1 or (level <= 3 and v & FS_PS):
                if iova & (span - 1) or iova + span > end:
                    raise ValueError(f"unmap of 0x{iova:x} would split a {span >> 10} KiB page")
                mem.write_u64(ea, 0)
                self._collapse(path, freed)
                return span
            table = v & ADDR_MASK
        raise AssertionError("unreachable")

    def _collapse(self, path: list[tuple[int, int]], freed: list[int]) -> None:
        """Free tables (bottom-up) that became empty; the root table is kept."""
        for i in range(len(path) - 1, 0, -1):
            table, _ = path[i]
            if self.mem.read(self._hpa[table], PAGE) != _ZERO_PAGE:  # still has an entry
                return
            _, parent_ea = path[i - 1]
            self.mem.write_u64(parent_ea, 0)
            del self._hpa[table]
            freed.append(table)

    def free_tables(self, tables: list[int]) -> None:
        for t in tables:
            self.space.free_table(t)

    def destroy(self) -> None:
        """Free every table including the root (only after the table is unreachable and flushed)."""
        for t in list(self._hpa):
            self.space.free_table(t)
        self._hpa.clear()

    # ------------------------------------------------------------------ software walk
    def lookup(self, iova: int) -> Mapping | None:
        """Software walk (reference for tests): None when not mapped."""
        mem = self.mem
        table = self.root
        for level in range(self.levels, 0, -1):
            v = mem.read_u64(self._hpa[table] + 8 * self._index(iova, level))
            if not self._present(v):
                return None
            if level == 1 or (level <= 3 and v & FS_PS):
                shift = 3 + 9 * level
                pa = (v & ADDR_MASK & ~((1 << shift) - 1)) | (iova & ((1 << shift) - 1))
                if self.fmt is PteFormat.FIRST_STAGE:
                    return Mapping(pa, shift, True, bool(v & FS_RW), bool(v & FS_US))
                return Mapping(pa, shift, bool(v & SS_R), bool(v & SS_W), True)
            table = v & ADDR_MASK
        return None

    # ------------------------------------------------------------------ dirty tracking
    def read_and_clear_dirty(self, iova: int, size: int) -> list[tuple[int, int]]:
        """Second stage only: every leaf overlapping ``[iova, iova+size)`` whose D flag is set, as
        (iova of the leaf, page shift); D is cleared with a compare-and-write of the entry (the
        IOMMU may be setting A at the same time). The caller must then invalidate the IOTLB for
        the range: a cached translation that already allowed a write lets further writes
        through without the IOMMU setting D again (Linux ``intel_pasid``/``iommu_dirty``)."""
        if self.fmt is not PteFormat.SECOND_STAGE:
            raise ValueError("dirty tracking is a second-stage feature (SSADE)")
        out: list[tuple[int, int]] = []
        self._dirty_walk(self.root, self.levels, 0, iova, iova + size, out)
        return out

    def _dirty_walk(self, table: int, level: int, base: int, lo: int, hi: int, out: list[tuple[int, int]]) -> None:
        mem = self.mem
        shift = 3 + 9 * level
        first = max(0, (lo - base) >> shift) if lo > base else 0
        last = min(511, (hi - 1 - base) >> shift)
        hpa = self._hpa[table]
        for i in range(first, last + 1):
            ea = hpa + 8 * i
            v = mem.read_u64(ea)
            if not self._present(v):
                continue
            va = base | i << shift
            if level == 1 or (level <= 3 and v & SS_PS):
                if v & SS_D:
                    while True:  # cmpxchg: clear D, keep whatever else the IOMMU set meanwhile
                        cur = mem.read_u64(ea)
                        if mem.read_u64(ea) == cur:
                            mem.write_u64(ea, cur & ~SS_D)
                            break
                    out.append((va, shift))
            else:
                self._dirty_walk(v & ADDR_MASK, level - 1, va, lo, hi, out)

    def leaves(self) -> Iterator[tuple[int, Mapping]]:
        """Every mapped leaf as (iova of the page, Mapping) — for debugging and tests."""
        yield from self._leaves(self.root, self.levels, 0)

    def _leaves(self, table: int, level: int, base: int) -> Iterator[tuple[int, Mapping]]:
        raw = self.mem.read(self._hpa[table], PAGE)
        for i in range(512):
            v = int.from_bytes(raw[8 * i : 8 * i + 8], "little")
            if not self._present(v):
                continue
            va = base | i << (3 + 9 * level)
            if level == 1 or (level <= 3 and v & FS_PS):
                m = self.lookup(va)
                if m is not None:
                    yield va, m
            else:
                yield from self._leaves(v & ADDR_MASK, level - 1, va)
