"""Page walkers: first-stage (4/5-level), second-stage (3/4/5-level) and nested.

Walkers read paging entries straight from :class:`~siov_sim.model.mem.HostMemory` as integers
(no object per level), check reserved bits / presence / permissions in the architectural order,
update A/EA/D flags with a read-compare-write (atomic in this synchronous model) and return either
``(output_address, page_shift)`` or a :class:`~siov_sim.model.iommu.faults.FaultReason`. Hardware
faults are values, never exceptions; an access outside host memory becomes the matching
"error reading entry" fault.
"""

from __future__ import annotations

from typing import NamedTuple

from siov_sim.model.iommu.entries import (
    FS_A,
    FS_D,
    FS_EA,
    FS_P,
    FS_PS,
    SS_A,
    SS_D,
    SS_PS,
    fs_reserved_mask,
    ss_reserved_mask,
)
from siov_sim.model.iommu.faults import FaultReason as FR
from siov_sim.model.iommu.regs import Caps
from siov_sim.model.mem import BusError, HostMemory

INTR_BASE = 0xFEE0_0000
INTR_END = 0xFEF0_0000  # exclusive


class Translation(NamedTuple):
    """A successful translation (a NamedTuple so that an IOTLB hit costs one tuple build).

    ``hpa``: output address; ``page_shift``: size of the translated page (12/21/30);
    ``did``/``pasid``/``pgtt``: the domain, effective PASID (RID_PASID for requests without PASID)
    and translation type that produced it (``pgtt`` 0 when remapping is disabled).
    """

    hpa: int
    page_shift: int
    did: int
    pasid: int
    pgtt: int


class SsParams(NamedTuple):
    """Second-stage walk parameters taken from a PASID entry."""

    root: int
    levels: int
    limit_bits: int  # input must be < 2^limit_bits
    ssade: bool
    snoop: bool  # paging-structure accesses snooped (PWSNP and SMPWCS): A/D updates allowed


WalkResult = tuple[int, int] | FR


def overlaps_intr(base: int, shift: int) -> bool:
    return base < INTR_END and base + (1 << shift) > INTR_BASE


class Walker:
    """Page walker for one unit's capabilities (reserved-bit masks precomputed)."""

    __slots__ = ("_fs_addr", "_fs_rsvd", "_haw_mask", "_mem", "_ss_rsvd", "caps")

    def __init__(self, mem: HostMemory, caps: Caps) -> None:
        self._mem = mem
        self.caps = caps
        self._haw_mask = caps.haw_mask
        # index: level * 2 + ps
        self._fs_rsvd = tuple(fs_reserved_mask(i >> 1, bool(i & 1), caps) for i in range(12))
        self._ss_rsvd = tuple(ss_reserved_mask(i >> 1, bool(i & 1), caps) for i in range(12))
        self._fs_addr = caps.haw_mask & ~0xFFF

    # ------------------------------------------------------------------ second stage
    def ss_walk(self, p: SsParams, addr: int, want_r: bool, want_w: bool) -> tuple[int, int, int] | FR:
        """SS walk of ``addr``; returns ``(hpa, page_shift, cumulative R|W bits)`` or a fault.

        Permission faults: no R and no W -> 0x79, write without W -> 0x85, read without R -> 0x86.
        """
        if addr >> p.limit_bits:
            return FR.SGN_5_SS_INPUT
        read = self._mem.read
        rsvd = self._ss_rsvd
        table = p.root
        cum = 3
        path: list[tuple[int, int]] = []
        lvl = p.levels
        while True:
            ea = table + ((addr >> (3 + 9 * lvl)) & 0x1FF) * 8
            try:
                v = int.from_bytes(read(ea, 8), "little")
            except BusError:
                return FR.SSS_4_ROOT_READ if lvl == p.levels else FR.SSS_1_READ
            if not v & 3:
                return FR.SSS_2_NOT_PRESENT
            ps = 1 if (v & SS_PS and lvl <= 3) else 0
            if v & rsvd[lvl * 2 + ps]:
                return FR.SSS_3_RESERVED
            cum &= v
            path.append((ea, v))
            if lvl == 1 or ps:
                shift = 3 + 9 * lvl
                hpa = (v & self._fs_addr & ~((1 << shift) - 1)) | (addr & ((1 << shift) - 1))
                break
            table = v & self._fs_addr
            lvl -= 1
        if not cum & 3:
            return FR.SSS_2_NOT_PRESENT
        if want_w and not cum & 2:
            return FR.SGN_6_WRITE
        if want_r and not cum & 1:
            return FR.SGN_7_READ
        if p.ssade:
            last = len(path) - 1
            for i, (ea, v) in enumerate(path):
                bits = SS_A | (SS_D if (want_w and i == last) else 0)
                if v & bits != bits:
                    if not p.snoop:
                        return FR.SSS_5_AD_NOSNOOP
                    if not self._set_bits(ea, bits):
                        return FR.SSS_6_AD_FAILED
        return hpa, shift, cum & 3

    def ss_translate(self, p: SsParams, addr: int, write: bool) -> WalkResult:
        r = self.ss_walk(p, addr, not write, write)
        if isinstance(r, FR):
            return r
        return r[0], r[1]

    # ------------------------------------------------------------------ first stage
    def fs_walk(
        self,
        root: int,
        levels: int,
        addr: int,
        write: bool,
        user: bool,
        wpe: bool,
        eafe: bool,
        snoop: bool,
        nested: SsParams | None = None,
    ) -> WalkResult:
        """FS walk (nested: every table address and the output are GPAs translated by ``nested``)."""
        n = 48 if levels == 4 else 57
        top = addr >> (n - 1)
        if top and top != (1 << (65 - n)) - 1:
            return FR.SGN_1_CANONICAL
        read = self._mem.read
        rsvd = self._fs_rsvd
        amask = self._fs_addr
        table = root
        rw = us = 1
        path: list[tuple[int, int, bool]] = []  # (entry HPA, value, SS allows writing the entry)
        lvl = levels
        gpa_limit = 0
        if nested is not None:
            gpa_limit = min(self.caps.mgaw, nested.limit_bits)
        while True:
            ea = table + ((addr >> (3 + 9 * lvl)) & 0x1FF) * 8
            ss_w = True
            if nested is not None:
                t = self.ss_walk(nested, ea, True, nested.ssade)
                if isinstance(t, FR):
                    if t in (FR.SGN_6_WRITE, FR.SGN_7_READ):
                        return FR.SFS_6_NESTED_ROOT_READ if lvl == levels else FR.SFS_7_NESTED_ENTRY_READ
                    return t
                ea, ss_w = t[0], bool(t[2] & 2)
            try:
                v = int.from_bytes(read(ea, 8), "little")
            except BusError:
                return FR.SFS_4_ROOT_READ if lvl == levels else FR.SFS_1_READ
            if not v & FS_P:
                return FR.SFS_2_NOT_PRESENT
            ps = 1 if (v & FS_PS and lvl <= 3) else 0
            if lvl == 1:
                ps = 0
            if v & rsvd[lvl * 2 + ps]:
                return FR.SFS_3_RESERVED
            rw &= v >> 1
            us &= v >> 2
            path.append((ea, v, ss_w))
            nxt = v & amask
            if nested is not None and nxt >> gpa_limit:
                return FR.SFS_5_NESTED_ADDR
            if lvl == 1 or ps:
                shift = 3 + 9 * lvl
                out = (nxt & ~((1 << shift) - 1)) | (addr & ((1 << shift) - 1))
                break
            table = nxt
            lvl -= 1
        if user and not us & 1:
            return FR.SGN_2_USER
        if write and not rw & 1 and (user or wpe):
            return FR.SGN_6_WRITE
        abits = FS_A | (FS_EA if eafe else 0)
        last = len(path) - 1
        for i, (ea, v, ss_w) in enumerate(path):
            bits = abits | (FS_D if (write and i == last) else 0)
            if v & bits != bits:
                if not snoop:
                    return FR.SFS_9_AD_NOSNOOP
                if not ss_w:
                    return FR.SFS_8_NESTED_AD_WRITE
                if not self._set_bits(ea, bits):
                    return FR.SFS_10_AD_FAILED
        if nested is not None:
            t2 = self.ss_walk(nested, out, not write, write)
            if isinstance(t2, FR):
                return t2
            return t2[0], min(shift, t2[1])
        return out, shift

    def _set_bits(self, ea: int, bits: int) -> bool:
        """Atomic OR of flag bits into a 64-bit entry (re-read, compare, write)."""
        mem = self._mem
        try:
            for _ in range(4):
                cur = mem.read_u64(ea)
                new = cur | bits
                if cur == new:
                    return True
                if mem.read_u64(ea) == cur:  # nothing changed between read and update
                    mem.write_u64(ea, new)
                    return True
        except BusError:
            return False
        return False
