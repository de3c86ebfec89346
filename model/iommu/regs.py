"""VT-d register file: capabilities, the register table and a byte-masked register store.

The register file is kept as bytes plus per-byte RW and RW1C masks (the QEMU ``vtd_define_*``
pattern). Side effects of writes (GCMD commands, IQT fetch, W1C follow-ups) are not handled here:
:class:`siov_sim.model.iommu.iommu.VtdIommu` dispatches them after the masked store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag

REG_WINDOW_SIZE = 0x1000


class Reg(IntEnum):
    """Register offsets (VT-d spec §11.4; layout as QEMU's q35 DMAR unit)."""

    VER = 0x000
    CAP = 0x008
    ECAP = 0x010
    GCMD = 0x018
    GSTS = 0x01C
    RTADDR = 0x020
    CCMD = 0x028
    FSTS = 0x034
    FECTL = 0x038
    FEDATA = 0x03C
    FEADDR = 0x040
    FEUADDR = 0x044
    AFLOG = 0x058
    PMEN = 0x064
    IQH = 0x080
    IQT = 0x088
    IQA = 0x090
    ICS = 0x09C
    IECTL = 0x0A0
    IEDATA = 0x0A4
    IEADDR = 0x0A8
    IEUADDR = 0x0AC
    IQERCD = 0x0B0
    IRTA = 0x0B8
    PQH = 0x0C0
    PQT = 0x0C8
    PQA = 0x0D0
    PRS = 0x0DC
    PECTL = 0x0E0
    PEDATA = 0x0E4
    PEADDR = 0x0E8
    PEUADDR = 0x0EC
    IVA = 0x0F0
    IOTLB = 0x0F8
    FRCD0 = 0x220


class Gcmd(IntFlag):
    """GCMD (write-only commands) / GSTS (status) bits; same positions in both."""

    CFI = 1 << 23
    SIRTP = 1 << 24
    IRE = 1 << 25
    QIE = 1 << 26
    WBF = 1 << 27
    SRTP = 1 << 30
    TE = 1 << 31


GCMD_ONE_SHOT = Gcmd.SRTP | Gcmd.SIRTP | Gcmd.WBF


class Fsts(IntFlag):
    PFO = 1 << 0
    PPF = 1 << 1
    IQE = 1 << 4
    ICE = 1 << 5
    ITE = 1 << 6


FSTS_FRI_SHIFT = 8
FSTS_EVENT_MASK = Fsts.PFO | Fsts.PPF | Fsts.IQE | Fsts.ICE | Fsts.ITE
CTL_IM = 1 << 31  # FECTL / IECTL / PECTL interrupt mask
CTL_IP = 1 << 30  # interrupt pending (RO)

TTM_LEGACY = 0
TTM_SCALABLE = 1
TTM_ABORT = 3


@dataclass(frozen=True, slots=True)
class Caps:
    """Parameterised capabilities of one remapping unit; CAP/ECAP values are derived from them.

    Defaults: scalable mode with first-stage (4/5-level, 1G), second-stage (39/48/57-bit, 2M/1G),
    nested, pass-through, 20-bit PASIDs, QI, device-TLB, supervisor requests, 8 fault records.
    """

    version: int = 0x60  # major 6, minor 0 (ER=1 -> 0x5C, register-based IOTLB inv is an error)
    haw: int = 46  # host address width
    mgaw: int = 57  # maximum guest address width (CAP.MGAW = mgaw - 1)
    sagaw: int = 0b01110  # bit1=39/3-lvl, bit2=48/4-lvl, bit3=57/5-lvl
    nd: int = 6  # domain-id width code: 6 -> 16 bits
    nfr: int = 8  # number of fault recording registers
    fro: int = Reg.FRCD0 >> 4
    iro: int = Reg.IVA >> 4
    mamv: int = 18
    psi: bool = True
    sslps: int = 0b11  # second-stage 2M and 1G
    fs1gp: bool = True
    fs5lp: bool = True
    esrtps: bool = True
    cm: bool = False  # caching mode
    zlr: bool = False
    pss: int = 19  # PASID bits - 1
    smts: bool = True
    fsts: bool = True
    ssts: bool = True
    nest: bool = True
    pt: bool = True
    dt: bool = True  # device-TLB descriptors accepted (forwarded to an optional sink)
    prs: bool = False
    pds: bool = False
    srs: bool = True
    ers: bool = False
    eafs: bool = True
    ssads: bool = True
    smpwcs: bool = True
    sc: bool = True
    rps: bool = True
    rprivs: bool = True
    nwfs: bool = False
    ptrs: bool = False
    hpts: bool = False
    mts: bool = False
    adms: bool = False

    @property
    def did_bits(self) -> int:
        return 4 + 2 * self.nd

    @property
    def haw_mask(self) -> int:
        return (1 << self.haw) - 1

    def sagaw_bits(self, aw: int) -> int | None:
        """Input width for a PASID-entry AW code, or None if not supported (not in SAGAW)."""
        if aw not in (1, 2, 3) or not (self.sagaw >> aw) & 1:
            return None
        return 30 + 9 * aw

    @property
    def cap_value(self) -> int:
        v = self.nd & 0x7
        v |= (self.sagaw & 0x1F) << 8
        v |= ((self.mgaw - 1) & 0x3F) << 16
        v |= int(self.zlr) << 22
        v |= (self.fro & 0x3FF) << 24
        v |= (self.sslps & 0xF) << 34
        v |= int(self.psi) << 39
        v |= ((self.nfr - 1) & 0xFF) << 40
        v |= (self.mamv & 0x3F) << 48
        v |= 1 << 54 | 1 << 55  # DWD, DRD
        v |= int(self.fs1gp) << 56
        v |= int(self.fs5lp) << 60
        v |= int(self.esrtps) << 63
        v |= int(self.cm) << 7
        return v

    @property
    def ecap_value(self) -> int:
        v = 1 << 0  # C: table fetches snooped
        v |= 1 << 1  # QI
        v |= int(self.dt) << 2
        v |= int(self.pt) << 6
        v |= int(self.sc) << 7
        v |= (self.iro & 0x3FF) << 8
        v |= int(self.nest) << 26
        v |= int(self.prs) << 29
        v |= int(self.ers) << 30
        v |= int(self.srs) << 31
        v |= int(self.nwfs) << 33
        v |= int(self.eafs) << 34
        v |= (self.pss & 0x1F) << 35
        v |= 1 << 40  # PASID
        v |= int(self.pds) << 42
        v |= int(self.smts) << 43
        v |= int(self.ssads) << 45
        v |= int(self.ssts) << 46
        v |= int(self.fsts) << 47
        v |= int(self.smpwcs) << 48
        v |= int(self.rps) << 49
        v |= int(self.adms) << 52
        v |= int(self.rprivs) << 53
        v |= int(self.hpts) << 55
        v |= int(self.ptrs) << 56
        v |= int(self.mts) << 25
        return v


@dataclass(frozen=True, slots=True)
class RegSpec:
    """One register: software-visible behaviour of each bit (RO unless in rw_mask/w1c_mask)."""

    name: str
    offset: int
    width: int  # bytes
    reset: int = 0
    rw_mask: int = 0
    w1c_mask: int = 0


def reg_specs(caps: Caps) -> tuple[RegSpec, ...]:
    """The register table for a unit with capabilities ``caps``."""
    addr_mask = caps.haw_mask & ~0xFFF
    specs = [
        RegSpec("VER", Reg.VER, 4, caps.version),
        RegSpec("CAP", Reg.CAP, 8, caps.cap_value),
        RegSpec("ECAP", Reg.ECAP, 8, caps.ecap_value),
        RegSpec("GCMD", Reg.GCMD, 4),  # write-only: handled by the facade, reads return 0
        RegSpec("GSTS", Reg.GSTS, 4),
        RegSpec("RTADDR", Reg.RTADDR, 8, 0, addr_mask | 0xC00),
        RegSpec("CCMD", Reg.CCMD, 8, 0, (1 << 63) | (3 << 61) | (3 << 32) | 0xFFFF_FFFF),
        RegSpec("FSTS", Reg.FSTS, 4, 0, 0, int(Fsts.PFO | Fsts.IQE | Fsts.ICE | Fsts.ITE)),
        RegSpec("FECTL", Reg.FECTL, 4, CTL_IM, CTL_IM),
        RegSpec("FEDATA", Reg.FEDATA, 4, 0, 0xFFFF),
        RegSpec("FEADDR", Reg.FEADDR, 4, 0, 0xFFFF_FFFC),
        RegSpec("FEUADDR", Reg.FEUADDR, 4, 0, 0xFFFF_FFFF),
        RegSpec("AFLOG", Reg.AFLOG, 8),
        RegSpec("PMEN", Reg.PMEN, 4),
        RegSpec("IQH", Reg.IQH, 8),
        RegSpec("IQT", Reg.IQT, 8, 0, 0x7FFF0),
        RegSpec("IQA", Reg.IQA, 8, 0, addr_mask | 0x800 | 0x7),
        RegSpec("ICS", Reg.ICS, 4, 0, 0, 0x1),
        RegSpec("IECTL", Reg.IECTL, 4, CTL_IM, CTL_IM),
        RegSpec("IEDATA", Reg.IEDATA, 4, 0, 0xFFFF),
        RegSpec("IEADDR", Reg.IEADDR, 4, 0, 0xFFFF_FFFC),
        RegSpec("IEUADDR", Reg.IEUADDR, 4, 0, 0xFFFF_FFFF),
        RegSpec("IQERCD", Reg.IQERCD, 8),
        RegSpec("IRTA", Reg.IRTA, 8),
        RegSpec("PQH", Reg.PQH, 8),
        RegSpec("PQT", Reg.PQT, 8),
        RegSpec("PQA", Reg.PQA, 8),
        RegSpec("PRS", Reg.PRS, 4),
        RegSpec("PECTL", Reg.PECTL, 4, CTL_IM, CTL_IM),
        RegSpec("PEDATA", Reg.PEDATA, 4),
        RegSpec("PEADDR", Reg.PEADDR, 4),
        RegSpec("PEUADDR", Reg.PEUADDR, 4),
        RegSpec("IVA", caps.iro << 4, 8, 0, addr_mask | 0x7F),
        RegSpec("IOTLB", (caps.iro << 4) + 8, 8, 0, (1 << 63) | (3 << 60) | (3 << 48) | (0xFFFF << 32)),
    ]
    for n in range(caps.nfr):
        specs.append(RegSpec(f"FRCD{n}", (caps.fro << 4) + 16 * n, 16, 0, 0, 1 << 127))
    return tuple(specs)


WriteHook = Callable[[int, int], None]
"""Called after a software write lands: ``hook(value, mask)`` — the bits written into this
register (register-relative) and which of its bits the access covered."""


class RegFile:
    """Register bytes with per-byte RW and RW1C masks, plus per-register write hooks.

    Unknown offsets read 0 and ignore writes.
    """

    __slots__ = ("_by_offset", "_data", "_hooks", "_reset", "_rw", "_w1c", "specs")

    def __init__(self, specs: tuple[RegSpec, ...]) -> None:
        self.specs = specs
        self._data = bytearray(REG_WINDOW_SIZE)
        self._reset = bytearray(REG_WINDOW_SIZE)
        self._rw = bytearray(REG_WINDOW_SIZE)
        self._w1c = bytearray(REG_WINDOW_SIZE)
        self._by_offset: dict[int, RegSpec] = {}
        self._hooks: dict[int, WriteHook] = {}
        for s in specs:
            end = s.offset + s.width
            if end > REG_WINDOW_SIZE:
                raise ValueError(f"register {s.name} outside the register window")
            self._reset[s.offset : end] = s.reset.to_bytes(s.width, "little")
            self._rw[s.offset : end] = s.rw_mask.to_bytes(s.width, "little")
            self._w1c[s.offset : end] = s.w1c_mask.to_bytes(s.width, "little")
            self._by_offset[s.offset] = s
        self.reset()

    def reset(self) -> None:
        self._data[:] = self._reset

    def on_write(self, offset: int, hook: WriteHook) -> None:
        """Run ``hook`` after every software write that touches the register at ``offset``."""
        if offset not in self._by_offset:
            raise ValueError(f"no register at 0x{offset:x}")
        self._hooks[offset] = hook

    def spec_at(self, offset: int) -> RegSpec | None:
        return self._by_offset.get(offset)

    def touched(self, offset: int, size: int) -> list[RegSpec]:
        """Registers overlapping ``[offset, offset + size)``."""
        return [s for s in self.specs if s.offset < offset + size and offset < s.offset + s.width]

    def sw_read(self, offset: int, size: int) -> int:
        if offset < 0 or offset + size > REG_WINDOW_SIZE:
            return 0
        return int.from_bytes(self._data[offset : offset + size], "little")

    def sw_write(self, offset: int, size: int, value: int) -> None:
        """Software write: RW bits take the value, RW1C bits clear where 1 is written, RO stays;
        then the write hooks of every touched register run (in address order)."""
        if offset < 0 or offset + size > REG_WINDOW_SIZE:
            return
        value = value & ((1 << (8 * size)) - 1) if value >= 0 else 0
        val = value.to_bytes(size, "little")
        for i in range(size):
            a = offset + i
            old = self._data[a]
            rw = self._rw[a]
            new = (old & ~rw) | (val[i] & rw)
            new &= ~(val[i] & self._w1c[a]) & 0xFF
            self._data[a] = new
        if not self._hooks:
            return
        amask = (1 << (8 * size)) - 1
        for spec in self.touched(offset, size):
            hook = self._hooks.get(spec.offset)
            if hook is None:
                continue
            rel = 8 * (offset - spec.offset)
            written, mask = (value << rel, amask << rel) if rel >= 0 else (value >> -rel, amask >> -rel)
            mask &= (1 << (8 * spec.width)) - 1
            hook(written & mask, mask)

    # hardware-side accessors (no masks)
    def get(self, offset: int, size: int = 4) -> int:
        return int.from_bytes(self._data[offset : offset + size], "little")

    def put(self, offset: int, size: int, value: int) -> None:
        self._data[offset : offset + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")

    def set_bits(self, offset: int, size: int, bits: int) -> None:
        self.put(offset, size, self.get(offset, size) | bits)

    def clear_bits(self, offset: int, size: int, bits: int) -> None:
        self.put(offset, size, self.get(offset, size) & ~bits)

    def snapshot(self) -> bytes:
        return bytes(self._data)
