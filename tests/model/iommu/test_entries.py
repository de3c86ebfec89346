"""Decode of every scalable-mode structure and paging entry, including reserved-bit detection."""

from __future__ import annotations

import pytest

from siov_sim.model.iommu import Caps, ContextEntry, FsPte, PasidDirEntry, PasidEntry, Pgtt, RootEntry, SsPte

pytestmark = pytest.mark.model
CAPS = Caps()


def q(*qws: int) -> bytes:
    return b"".join(v.to_bytes(8, "little") for v in qws)


def test_root_entry_halves() -> None:
    r = RootEntry.from_bytes(q(0x1234_5000 | 1, 0x6789_A000), CAPS)
    assert r.lp and r.lctp == 0x1234_5000 and not r.up and r.uctp == 0x6789_A000
    assert r.half(0x7F) == (True, 0x1234_5000, False)
    assert r.half(0x80) == (False, 0x6789_A000, False)
    assert RootEntry.from_bytes(RootEntry.encode(0x1000, 0x2000), CAPS).half(0xFF) == (True, 0x2000, False)


@pytest.mark.parametrize("lo,hi,lower,upper", [(1 | 2, 1, True, False), (1, 1 | 1 << 50, False, True)])
def test_root_entry_reserved(lo: int, hi: int, lower: bool, upper: bool) -> None:
    r = RootEntry.from_bytes(q(lo, hi), CAPS)
    assert (r.lower_reserved, r.upper_reserved) == (lower, upper)


def test_context_entry_fields() -> None:
    raw = q(0x0ABC_D000 | 3 << 9 | 0b1011, 0x12345 | 1 << 20, 0, 0)
    c = ContextEntry.from_bytes(raw, CAPS)
    assert (c.p, c.fpd, c.dte, c.paside, c.pre) == (True, True, False, True, False)
    assert c.pdts == 3 and c.pasid_dir == 0x0ABC_D000 and c.rid_pasid == 0x12345 and c.rid_priv
    assert c.max_pasid == (1 << 16) - 1
    assert c.invalid()  # RID_PASID beyond PDTS
    assert not c.reserved


@pytest.mark.parametrize(
    "raw,caps",
    [
        (q(1 | 1 << 7, 0, 0, 0), CAPS),  # bits 8:7
        (q(1 | 1 << 50, 0, 0, 0), CAPS),  # pointer above HAW
        (q(1, 1 << 21, 0, 0), CAPS),  # q1 63:21
        (q(1, 0, 1, 0), CAPS),  # q2
        (q(1, 0, 0, 1 << 63), CAPS),  # q3
        (q(1 | 1 << 4 | 1 << 2, 0, 0, 0), CAPS),  # PRE without PRS
        (q(1 | 1 << 2, 0, 0, 0), Caps(dt=False)),  # DTE without DT
        (q(1, 5, 0, 0), Caps(rps=False)),  # RID_PASID without RPS
        (q(1, 1 << 20, 0, 0), Caps(rprivs=False)),
        (q(1 | 1 << 6 | 1 << 3, 0, 0, 0), CAPS),  # EPTR without PTRS
    ],
)
def test_context_entry_reserved(raw: bytes, caps: Caps) -> None:
    assert ContextEntry.from_bytes(raw, caps).reserved


def test_context_entry_invalid_combinations() -> None:
    c = ContextEntry.from_bytes(q(1 | 1 << 4, 0, 0, 0), Caps(prs=True))  # PRE without DTE
    assert c.invalid()
    assert not ContextEntry.from_bytes(ContextEntry.encode(0x1000, 7), CAPS).invalid()


def test_pasid_dir_entry() -> None:
    d = PasidDirEntry.from_int(0x4567_8000 | 3, CAPS)
    assert d.p and d.fpd and d.pasid_table == 0x4567_8000 and not d.reserved
    assert PasidDirEntry.from_int(1 | 1 << 5, CAPS).reserved
    assert PasidDirEntry.from_int(1 | 1 << 47, CAPS).reserved


def test_pasid_entry_fs_fields() -> None:
    raw = PasidEntry.encode(Pgtt.FIRST_STAGE, 0x1234, fsptptr=0x1_2345_6000, fspm=1, sre=True, wpe=True, eafe=True)
    e = PasidEntry.from_bytes(raw, CAPS)
    assert (e.p, e.pgtt, e.did, e.fsptptr, e.fspm, e.sre, e.wpe, e.eafe) == (
        True,
        Pgtt.FIRST_STAGE,
        0x1234,
        0x1_2345_6000,
        1,
        True,
        True,
        True,
    )
    assert e.pwsnp and not e.reserved and not e.invalid(CAPS)


def test_pasid_entry_ss_fields() -> None:
    e = PasidEntry.from_bytes(PasidEntry.encode(Pgtt.SECOND_STAGE, 7, ssptptr=0xABC000, aw=1, ssade=True), CAPS)
    assert (e.pgtt, e.aw, e.ssptptr, e.ssade, e.did) == (Pgtt.SECOND_STAGE, 1, 0xABC000, True, 7)
    assert not e.invalid(CAPS)


@pytest.mark.parametrize(
    "qws,caps",
    [
        ((1 | 2 << 6 | 1 << 5,), CAPS),  # bit 5
        ((1 | 2 << 6 | 1 << 10,), CAPS),  # bits 11:10
        ((1 | 2 << 6 | 1 << 46,), CAPS),  # SSPTPTR above HAW (SS)
        ((1 | 1 << 6, 0, 1 << 46), CAPS),  # FSPTPTR above HAW (FS)
        ((1 | 2 << 6, 1 << 16), CAPS),  # q1 22:16
        ((1 | 2 << 6, 1 << 25), CAPS),  # CD without MTS
        ((1 | 1 << 6, 0, 1 << 1), CAPS),  # q2 bit 1
        ((1 | 1 << 6, 0, 0, 1), CAPS),  # q3
        ((1 | 1 << 6, 0, 0, 0, 0, 0, 0, 1 << 63), CAPS),  # q7
        ((1 | 2 << 6 | 1 << 9,), Caps(ssads=False)),  # SSADE without SSADS
        ((1 | 1 << 6, 0, 1), Caps(srs=False)),  # SRE without SRS
        ((1 | 1 << 6, 0, 1 << 7), Caps(eafs=False)),  # EAFE without EAFS
        ((1 | 1 << 6, 1 << 23), Caps(smpwcs=False)),  # PWSNP without SMPWCS
        ((1 | 1 << 6, 1 << 24), Caps(sc=False)),  # PGSNP without SC
        ((1 | 1 << 6, 0x100), Caps(nd=2)),  # DID wider than ND
    ],
)
def test_pasid_entry_reserved(qws: tuple[int, ...], caps: Caps) -> None:
    raw = q(*qws).ljust(64, b"\0")
    assert PasidEntry.from_bytes(raw, caps).reserved


@pytest.mark.parametrize(
    "pgtt,aw,fspm,caps",
    [
        (0, 2, 0, CAPS),
        (5, 2, 0, CAPS),
        (7, 2, 0, CAPS),
        (Pgtt.SECOND_STAGE, 0, 0, CAPS),  # AW not in SAGAW
        (Pgtt.SECOND_STAGE, 3, 0, Caps(sagaw=0b00110)),
        (Pgtt.FIRST_STAGE, 2, 1, Caps(fs5lp=False)),
        (Pgtt.FIRST_STAGE, 2, 2, CAPS),
        (Pgtt.NESTED, 2, 0, Caps(nest=False)),
        (Pgtt.PASS_THROUGH, 2, 0, Caps(pt=False)),
        (Pgtt.FIRST_STAGE, 2, 0, Caps(fsts=False)),
        (Pgtt.SECOND_STAGE, 2, 0, Caps(ssts=False)),
    ],
)
def test_pasid_entry_invalid(pgtt: int, aw: int, fspm: int, caps: Caps) -> None:
    e = PasidEntry.from_bytes(PasidEntry.encode(pgtt, 1, aw=aw, fspm=fspm), caps)
    assert e.invalid(caps)


def test_nested_fsptptr_beyond_aw_is_invalid() -> None:
    caps = Caps(haw=52)
    raw = PasidEntry.encode(Pgtt.NESTED, 1, aw=1, fsptptr=1 << 40)  # 39-bit SS input, FS root at 2^40
    assert PasidEntry.from_bytes(raw, caps).invalid(caps)


def test_fs_pte_decode() -> None:
    p = FsPte.from_int(0x1234_5000 | 0x67, 1, CAPS)  # P RW US A D
    assert (p.p, p.rw, p.us, p.a, p.d, p.leaf, p.addr, p.reserved) == (
        True,
        True,
        True,
        True,
        True,
        True,
        0x1234_5000,
        False,
    )
    big = FsPte.from_int(0x4020_0000 | 0x83, 2, CAPS)
    assert big.leaf and big.ps and big.addr == 0x4020_0000 and not big.reserved
    assert FsPte.from_int(0x4020_0000 | 0x83 | 1 << 13, 2, CAPS).reserved  # 20:13 in 2M leaf
    assert FsPte.from_int(0x4000_0000 | 0x83 | 1 << 20, 3, CAPS).reserved  # 29:13 in 1G leaf
    assert FsPte.from_int(0x83, 4, CAPS).reserved  # PS in PML4E
    assert FsPte.from_int(0x83, 3, Caps(fs1gp=False)).reserved
    assert FsPte.from_int(1 | 1 << 50, 1, CAPS).reserved  # 51:HAW
    assert not FsPte.from_int(1 | 0xFFF << 52 | 1 << 11 | 1 << 9 | 1 << 8, 1, CAPS).reserved  # ignored bits
    assert FsPte.from_int(0x80 | 1, 1, CAPS).leaf  # PAT bit in a PTE is not PS


def test_ss_pte_decode() -> None:
    p = SsPte.from_int(0x5000 | 3 | 1 << 8, 1, CAPS)
    assert (p.r, p.w, p.a, p.addr, p.leaf, p.reserved) == (True, True, True, 0x5000, True, False)
    assert SsPte.from_int(1 | 1 << 62, 1, CAPS).reserved
    assert not SsPte.from_int(1 << 62, 1, CAPS).reserved  # not present: reserved bits not checked
    assert SsPte.from_int(1 | 1 << 11, 2, CAPS).reserved  # bit 11 in non-leaf
    assert SsPte.from_int(1 | 1 << 11, 1, Caps(sc=False)).reserved  # SNP without SC
    assert SsPte.from_int(1 | 0x80 | 1 << 12, 2, CAPS).reserved  # 20:12 in 2M leaf
    assert SsPte.from_int(1 | 0x80, 3, Caps(sslps=0b01)).reserved  # 1G without support
    assert SsPte.from_int(1 | 0x80, 4, CAPS).reserved
