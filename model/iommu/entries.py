"""Scalable-mode lookup structures and paging entries, decoded from host-memory bytes.

Each structure is a frozen dataclass with ``from_bytes(raw, caps)``; ``reserved`` is True when any
bit that must be zero for *this* unit's capabilities is set (the reserved-bit masks are derived
from :class:`~siov_sim.model.iommu.regs.Caps`). Bit positions follow the VT-d spec §9.

The page walkers in ``walk.py`` decode PTEs from raw integers with the constants below (no object
per level on the hot path); :class:`FsPte` / :class:`SsPte` are the same decode for tests and tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from siov_sim.model.iommu.regs import Caps

ROOT_ENTRY_SIZE = 16
CONTEXT_ENTRY_SIZE = 32
PASID_DIR_ENTRY_SIZE = 8
PASID_ENTRY_SIZE = 64
PTE_SIZE = 8
ADDR_4K = ~0xFFF & 0xFFFF_FFFF_FFFF_FFFF

# First-stage PTE bits
FS_P = 1 << 0
FS_RW = 1 << 1
FS_US = 1 << 2
FS_A = 1 << 5
FS_D = 1 << 6
FS_PS = 1 << 7
FS_EA = 1 << 10
FS_IGNORED_HI = 0xFFF0_0000_0000_0000  # bits 63:52
# Second-stage PTE bits
SS_R = 1 << 0
SS_W = 1 << 1
SS_PS = 1 << 7
SS_A = 1 << 8
SS_D = 1 << 9
SS_SNP = 1 << 11
SS_BIT62 = 1 << 62


class Pgtt(IntEnum):
    """PASID-granular translation type (PASID entry bits 8:6)."""

    FIRST_STAGE = 1
    SECOND_STAGE = 2
    NESTED = 3
    PASS_THROUGH = 4


def addr_bits_reserved(value: int, haw: int) -> int:
    """Bits 63:haw of an address field (reserved when set)."""
    return value & ~((1 << haw) - 1) & 0xFFFF_FFFF_FFFF_FFFF


@dataclass(frozen=True, slots=True)
class RootEntry:
    """Scalable-mode root entry (128 bit): lower/upper context-table pointers."""

    lp: bool
    lctp: int
    up: bool
    uctp: int
    lower_reserved: bool
    upper_reserved: bool

    @classmethod
    def from_bytes(cls, raw: bytes, caps: Caps) -> RootEntry:
        lo = int.from_bytes(raw[0:8], "little")
        hi = int.from_bytes(raw[8:16], "little")
        return cls(
            lp=bool(lo & 1),
            lctp=lo & ADDR_4K,
            up=bool(hi & 1),
            uctp=hi & ADDR_4K,
            lower_reserved=bool(lo & 0xFFE) or bool(addr_bits_reserved(lo, caps.haw)),
            upper_reserved=bool(hi & 0xFFE) or bool(addr_bits_reserved(hi, caps.haw)),
        )

    def half(self, devfn: int) -> tuple[bool, int, bool]:
        """(present, context-table pointer, reserved) of the half that serves ``devfn``."""
        if devfn & 0x80:
            return self.up, self.uctp, self.upper_reserved
        return self.lp, self.lctp, self.lower_reserved

    @staticmethod
    def encode(lctp: int | None, uctp: int | None) -> bytes:
        lo = (lctp | 1) if lctp is not None else 0
        hi = (uctp | 1) if uctp is not None else 0
        return lo.to_bytes(8, "little") + hi.to_bytes(8, "little")


@dataclass(frozen=True, slots=True)
class ContextEntry:
    """Scalable-mode context entry (256 bit)."""

    p: bool
    fpd: bool
    dte: bool
    paside: bool
    pre: bool
    hpte: bool
    eptr: bool
    pdts: int
    pasid_dir: int
    rid_pasid: int
    rid_priv: bool
    reserved: bool

    @property
    def max_pasid(self) -> int:
        """Highest PASID the directory can index (2^(PDTS+13) - 1)."""
        return (1 << (self.pdts + 13)) - 1

    def invalid(self) -> bool:
        """SCT.4 (0x43) conditions."""
        return (not self.dte and self.pre) or (self.eptr and not self.paside) or self.rid_pasid > self.max_pasid

    @classmethod
    def from_bytes(cls, raw: bytes, caps: Caps) -> ContextEntry:
        q0 = int.from_bytes(raw[0:8], "little")
        q1 = int.from_bytes(raw[8:16], "little")
        q23 = int.from_bytes(raw[16:32], "little")
        rsvd = bool(q0 & (0x3 << 7)) or bool(addr_bits_reserved(q0, caps.haw))
        rsvd |= bool(q1 >> 21) or bool(q23)
        dte, pre, hpte, eptr = bool(q0 & 4), bool(q0 & 16), bool(q0 & 32), bool(q0 & 64)
        rid_pasid, rid_priv = q1 & 0xFFFFF, bool(q1 >> 20 & 1)
        rsvd |= (dte and not caps.dt) or (pre and not caps.prs) or (hpte and not caps.hpts)
        rsvd |= (eptr and not caps.ptrs) or (rid_pasid != 0 and not caps.rps)
        rsvd |= rid_priv and not caps.rprivs
        return cls(
            p=bool(q0 & 1),
            fpd=bool(q0 & 2),
            dte=dte,
            paside=bool(q0 & 8),
            pre=pre,
            hpte=hpte,
            eptr=eptr,
            pdts=q0 >> 9 & 0x7,
            pasid_dir=q0 & ADDR_4K,
            rid_pasid=rid_pasid,
            rid_priv=rid_priv,
            reserved=rsvd,
        )

    @staticmethod
    def encode(
        pasid_dir: int,
        pdts: int,
        *,
        p: bool = True,
        fpd: bool = False,
        dte: bool = False,
        paside: bool = True,
        pre: bool = False,
        rid_pasid: int = 0,
        rid_priv: bool = False,
    ) -> bytes:
        q0 = pasid_dir | (pdts & 7) << 9 | p | fpd << 1 | dte << 2 | paside << 3 | pre << 4
        q1 = (rid_pasid & 0xFFFFF) | rid_priv << 20
        return q0.to_bytes(8, "little") + q1.to_bytes(8, "little") + bytes(16)


@dataclass(frozen=True, slots=True)
class PasidDirEntry:
    """Scalable-mode PASID-directory entry (64 bit)."""

    p: bool
    fpd: bool
    pasid_table: int
    reserved: bool

    @classmethod
    def from_bytes(cls, raw: bytes, caps: Caps) -> PasidDirEntry:
        v = int.from_bytes(raw[0:8], "little")
        return cls.from_int(v, caps)

    @classmethod
    def from_int(cls, v: int, caps: Caps) -> PasidDirEntry:
        return cls(
            p=bool(v & 1),
            fpd=bool(v & 2),
            pasid_table=v & ADDR_4K,
            reserved=bool(v & 0xFFC) or bool(addr_bits_reserved(v, caps.haw)),
        )

    @staticmethod
    def encode(pasid_table: int, *, p: bool = True, fpd: bool = False) -> int:
        return pasid_table | p | fpd << 1


@dataclass(frozen=True, slots=True)
class PasidEntry:
    """Scalable-mode PASID-table entry (512 bit)."""

    p: bool
    fpd: bool
    aw: int
    pgtt: int
    ssade: bool
    ssptptr: int
    did: int
    pwsnp: bool
    pgsnp: bool
    sre: bool
    fspm: int
    wpe: bool
    eafe: bool
    fsptptr: int
    reserved: bool

    @classmethod
    def from_bytes(cls, raw: bytes, caps: Caps) -> PasidEntry:
        q0 = int.from_bytes(raw[0:8], "little")
        q1 = int.from_bytes(raw[8:16], "little")
        q2 = int.from_bytes(raw[16:24], "little")
        rest = int.from_bytes(raw[24:64], "little")
        pgtt = q0 >> 6 & 7
        ssade, pwsnp, pgsnp = bool(q0 >> 9 & 1), bool(q1 >> 23 & 1), bool(q1 >> 24 & 1)
        sre, eafe = bool(q2 & 1), bool(q2 >> 7 & 1)
        rsvd = bool(q0 & (1 << 5 | 3 << 10)) or bool(q1 & (0x7F << 16 | 0x1F << 27))
        rsvd |= bool(q1 & 0xFFFF & ~((1 << caps.did_bits) - 1))
        rsvd |= bool(q1 >> 25 & 3) and not caps.mts
        rsvd |= bool(q2 & (1 << 1 | 0xF << 8)) or bool(rest)
        rsvd |= (ssade and not caps.ssads) or (pwsnp and not caps.smpwcs) or (pgsnp and not caps.sc)
        rsvd |= (sre and not caps.srs) or (eafe and not caps.eafs)
        if pgtt in (Pgtt.SECOND_STAGE, Pgtt.NESTED):
            rsvd |= bool(addr_bits_reserved(q0, caps.haw))
        if pgtt in (Pgtt.FIRST_STAGE, Pgtt.NESTED):
            rsvd |= bool(addr_bits_reserved(q2, caps.haw))
        return cls(
            p=bool(q0 & 1),
            fpd=bool(q0 & 2),
            aw=q0 >> 2 & 7,
            pgtt=pgtt,
            ssade=ssade,
            ssptptr=q0 & ADDR_4K,
            did=q1 & 0xFFFF,
            pwsnp=pwsnp,
            pgsnp=pgsnp,
            sre=sre,
            fspm=q2 >> 2 & 3,
            wpe=bool(q2 >> 4 & 1),
            eafe=eafe,
            fsptptr=q2 & ADDR_4K,
            reserved=rsvd,
        )

    def invalid(self, caps: Caps) -> bool:
        """SPT.4 (0x5B): unsupported PGTT / AW / FSPM, nested FSPTPTR out of range."""
        pgtt = self.pgtt
        if pgtt == Pgtt.FIRST_STAGE:
            ok = caps.fsts
        elif pgtt == Pgtt.SECOND_STAGE:
            ok = caps.ssts
        elif pgtt == Pgtt.NESTED:
            ok = caps.nest
        elif pgtt == Pgtt.PASS_THROUGH:
            ok = caps.pt
        else:
            return True
        if not ok:
            return True
        if pgtt in (Pgtt.SECOND_STAGE, Pgtt.NESTED):
            width = caps.sagaw_bits(self.aw)
            if width is None:
                return True
            if pgtt == Pgtt.NESTED and self.fsptptr >> min(caps.mgaw, width):
                return True
        fs = pgtt in (Pgtt.FIRST_STAGE, Pgtt.NESTED)
        return fs and (self.fspm > 1 or (self.fspm == 1 and not caps.fs5lp))

    @staticmethod
    def encode(
        pgtt: int,
        did: int,
        *,
        p: bool = True,
        fpd: bool = False,
        aw: int = 2,
        ssptptr: int = 0,
        ssade: bool = False,
        fsptptr: int = 0,
        fspm: int = 0,
        sre: bool = False,
        wpe: bool = False,
        eafe: bool = False,
        pwsnp: bool = True,
        pgsnp: bool = False,
    ) -> bytes:
        q0 = p | fpd << 1 | (aw & 7) << 2 | (pgtt & 7) << 6 | ssade << 9 | ssptptr
        q1 = (did & 0xFFFF) | pwsnp << 23 | pgsnp << 24
        q2 = sre | (fspm & 3) << 2 | wpe << 4 | eafe << 7 | fsptptr
        return q0.to_bytes(8, "little") + q1.to_bytes(8, "little") + q2.to_bytes(8, "little") + bytes(40)


@dataclass(frozen=True, slots=True)
class FsPte:
    """First-stage (x86-64) paging entry at ``level`` (1 = PTE ... 5 = PML5E)."""

    level: int
    p: bool
    rw: bool
    us: bool
    a: bool
    d: bool
    ps: bool
    ea: bool
    addr: int
    leaf: bool
    reserved: bool

    @classmethod
    def from_int(cls, v: int, level: int, caps: Caps) -> FsPte:
        ps = bool(v & FS_PS)
        leaf = level == 1 or (level in (2, 3) and ps)
        return cls(
            level=level,
            p=bool(v & FS_P),
            rw=bool(v & FS_RW),
            us=bool(v & FS_US),
            a=bool(v & FS_A),
            d=bool(v & FS_D),
            ps=ps,
            ea=bool(v & FS_EA),
            addr=v & fs_addr_mask(level, leaf, caps.haw),
            leaf=leaf,
            reserved=bool(v & fs_reserved_mask(level, ps, caps)),
        )


def fs_addr_mask(level: int, leaf: bool, haw: int) -> int:
    """Mask of the address field of an FS entry (next table or page frame)."""
    low = 12 if not leaf else 12 + 9 * (level - 1)
    return ((1 << haw) - 1) & ~((1 << low) - 1)


def fs_reserved_mask(level: int, ps: bool, caps: Caps) -> int:
    """Bits that must be 0 in a present FS entry at ``level`` (given its PS bit)."""
    m = ((1 << 52) - 1) & ~((1 << caps.haw) - 1)
    if level >= 4:
        m |= FS_PS
    elif level == 3:
        if ps and not caps.fs1gp:
            m |= FS_PS
        elif ps:
            m |= 0x3FFFE000  # 29:13
    elif level == 2 and ps:
        m |= 0x1FE000  # 20:13
    return m


@dataclass(frozen=True, slots=True)
class SsPte:
    """Second-stage (EPT-like) paging entry at ``level``."""

    level: int
    r: bool
    w: bool
    ps: bool
    a: bool
    d: bool
    snp: bool
    addr: int
    leaf: bool
    reserved: bool

    @classmethod
    def from_int(cls, v: int, level: int, caps: Caps) -> SsPte:
        ps = bool(v & SS_PS)
        leaf = level == 1 or (level in (2, 3) and ps)
        present = bool(v & (SS_R | SS_W))
        return cls(
            level=level,
            r=bool(v & SS_R),
            w=bool(v & SS_W),
            ps=ps,
            a=bool(v & SS_A),
            d=bool(v & SS_D),
            snp=bool(v & SS_SNP),
            addr=v & ss_addr_mask(level, leaf, caps.haw),
            leaf=leaf,
            reserved=present and bool(v & ss_reserved_mask(level, ps, caps)),
        )


def ss_addr_mask(level: int, leaf: bool, haw: int) -> int:
    low = 12 if not leaf else 12 + 9 * (level - 1)
    return ((1 << haw) - 1) & ~((1 << low) - 1)


def ss_reserved_mask(level: int, ps: bool, caps: Caps) -> int:
    """Bits that must be 0 in an SS entry with R or W set (SSIRWE not supported: bit 62 reserved)."""
    m = (((1 << 52) - 1) & ~((1 << caps.haw) - 1)) | SS_BIT62
    leaf = level == 1 or (level in (2, 3) and ps)
    if level >= 4 or (level == 3 and ps and not caps.sslps & 2) or (level == 2 and ps and not caps.sslps & 1):
        m |= SS_PS
    if leaf:
        if level == 3 and ps and caps.sslps & 2:
            m |= 0x3FFFF000  # 29:12
        elif level == 2 and ps and caps.sslps & 1:
            m |= 0x1FF000  # 20:12
        if not caps.sc:
            m |= SS_SNP
    else:
        m |= SS_SNP  # bit 11 reserved in non-leaf entries
    return m
