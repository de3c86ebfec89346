"""Walk details: indexing, page sizes, A/EA/D updates, privilege rules, cumulative permissions, nested."""

from __future__ import annotations

import pytest

from siov_sim.model.iommu import Caps, Fault, PasidEntry, Pgtt, Translation
from siov_sim.model.iommu.entries import FS_A, FS_D, FS_EA, SS_A, SS_D

from .env import Env

pytestmark = pytest.mark.model

SID = 0x0508


def walk_path(env: Env, root: int, levels: int, va: int) -> list[int]:
    """Entry addresses used for ``va`` (software walk of whatever is in memory)."""
    out = []
    t = root
    for lvl in range(levels, 0, -1):
        ea = t + ((va >> (3 + 9 * lvl)) & 0x1FF) * 8
        out.append(ea)
        v = env.mem.read_u64(ea)
        if lvl <= 3 and v & 0x80:
            break
        t = v & 0x000F_FFFF_FFFF_F000
    return out


def test_lower_and_upper_context_tables() -> None:
    env = Env()
    env.enable()
    for devfn, did in ((0x7F, 3), (0x80, 4)):
        sid = 0x0200 | devfn
        env.context(sid)
        env.bind_pt(sid, 0, did=did)
    t1 = env.iommu.translate(0x027F, None, 0x1000)
    t2 = env.iommu.translate(0x0280, None, 0x1000)
    assert isinstance(t1, Translation) and t1.did == 3
    assert isinstance(t2, Translation) and t2.did == 4
    lower = env.ctx_tables[(2, False)]
    upper = env.ctx_tables[(2, True)]
    assert env.mem.read_u64(lower + 127 * 32) & 1 and env.mem.read_u64(upper) & 1
    # LP=1, UP=0: only the upper half faults
    env.mem.write_u64(env.root + 2 * 16 + 8, 0)
    env.gcmd(1 << 30)  # SRTP (ESRTPS flushes)
    f = env.iommu.translate(0x0281, None, 0x1000)
    assert isinstance(f, Fault) and f.reason == 0x39
    assert isinstance(env.iommu.translate(0x027F, None, 0x1000), Translation)


def test_pasid_indexing() -> None:
    env = Env()
    env.enable()
    env.context(SID)
    ea = env.bind_pt(SID, 0x12345, did=9)
    assert env.mem.read_u64(env.pdirs[SID] + 0x48D * 8) & ~0xFFF == ea & ~0xFFF
    assert ea & 0xFFF == 0x05 * 64
    t = env.iommu.translate(SID, 0x12345, 0x3000)
    assert isinstance(t, Translation) and t.did == 9 and t.pasid == 0x12345


@pytest.mark.parametrize("rps", [True, False])
def test_requests_without_pasid_use_rid_pasid(rps: bool) -> None:
    env = Env(Caps(rps=rps))
    env.enable()
    env.context(SID, rid_pasid=9 if rps else 0)
    env.bind_pt(SID, 0, did=3)
    env.bind_pt(SID, 9, did=4)
    t = env.iommu.translate(SID, None, 0x1000)
    assert isinstance(t, Translation) and (t.did, t.pasid) == ((4, 9) if rps else (3, 0))
    if rps:  # the RID_PASID value is not usable as a real PASID
        f = env.iommu.translate(SID, 9, 0x1000)
        assert isinstance(f, Fault) and f.reason == 0x48


def test_rid_priv_gives_supervisor_privilege() -> None:
    env = Env()
    env.enable()
    env.context(SID, rid_priv=True)
    pt = env.fs_table()
    page = env.page()
    pt.map(0x1000, page, 4096, user=False)
    env.bind_fs(SID, 0, pt, sre=True)
    t = env.iommu.translate(SID, None, 0x1000)
    assert isinstance(t, Translation) and t.hpa == page


@pytest.mark.parametrize("levels", [4, 5])
@pytest.mark.parametrize("shift", [12, 21, 30])
def test_fs_page_sizes_and_ad_bits(levels: int, shift: int) -> None:
    env = Env()
    env.enable()
    env.context(SID)
    pt = env.fs_table(levels)
    size = 1 << shift
    out = 1 << 34
    va = (0x1F << 48 if levels == 5 else 0x7F << 39) | 3 << 30
    pt.map(va, out, size)
    env.bind_fs(SID, 5, pt, eafe=True)
    path = walk_path(env, pt.root, levels, va)
    assert len(path) == levels - (shift - 12) // 9
    t = env.iommu.translate(SID, 5, va + size - 4)
    assert isinstance(t, Translation) and t.hpa == out + size - 4 and t.page_shift == shift
    vals = [env.mem.read_u64(a) for a in path]
    assert all(v & FS_A and v & FS_EA for v in vals)  # A (+EA with EAFE) on every level used
    assert not any(v & FS_D for v in vals)  # read: no D
    env.iommu.caches.flush_all()
    t = env.iommu.translate(SID, 5, va, write=True)
    assert isinstance(t, Translation)
    vals = [env.mem.read_u64(a) for a in path]
    assert vals[-1] & FS_D and not any(v & FS_D for v in vals[:-1])  # D on the leaf only


def test_fs_ea_not_set_without_eafe_and_flags_never_cleared() -> None:
    env = Env()
    env.enable()
    env.context(SID)
    pt = env.fs_table()
    pt.map(0x1000, 1 << 34, 4096)
    env.bind_fs(SID, 5, pt)
    path = walk_path(env, pt.root, 4, 0x1000)
    env.mem.write_u64(path[-1], env.mem.read_u64(path[-1]) | FS_D | 1 << 9)  # D preset, ignored bit 9
    env.iommu.translate(SID, 5, 0x1000)
    v = env.mem.read_u64(path[-1])
    assert v & FS_A and v & FS_D and v & 1 << 9 and not v & FS_EA


def test_fs_1g_without_fs1gp_is_reserved() -> None:
    env = Env(Caps(fs1gp=False))
    env.enable()
    env.context(SID)
    pt = env.fs_table()  # the builder uses 1G leaves: the unit must reject them
    pt.map(1 << 30, 1 << 34, 1 << 30)
    env.bind_fs(SID, 5, pt)
    f = env.iommu.translate(SID, 5, 1 << 30)
    assert isinstance(f, Fault) and f.reason == 0x72


def test_fs_canonical_upper_half_and_5level_boundary() -> None:
    env = Env()
    env.enable()
    env.context(SID)
    pt4, pt5 = env.fs_table(4), env.fs_table(5)
    pt4.map(0xFFFF_8000_0000_0000, 1 << 34, 4096)
    pt5.map(0xFF00_0000_0000_0000, 1 << 34, 4096)
    env.bind_fs(SID, 4, pt4)
    env.bind_fs(SID, 5, pt5)
    assert isinstance(env.iommu.translate(SID, 4, 0xFFFF_8000_0000_0000), Translation)
    assert isinstance(env.iommu.translate(SID, 5, 0xFF00_0000_0000_0000), Translation)
    f = env.iommu.translate(SID, 5, 0x0100_0000_0000_0000)  # bit 56 set, 63:57 clear
    assert isinstance(f, Fault) and f.reason == 0x80
    f = env.iommu.translate(SID, 5, 0x0000_8000_0000_0000)  # fine for 5-level (not mapped)
    assert isinstance(f, Fault) and f.reason == 0x71


def test_supervisor_write_protect() -> None:
    env = Env()
    env.enable()
    env.context(SID)
    pt = env.fs_table()
    pt.map(0x1000, 1 << 34, 4096, write=False, user=False)
    env.bind_fs(SID, 5, pt, sre=True, wpe=False)
    env.bind_fs(SID, 6, pt, sre=True, wpe=True, did=7)
    assert isinstance(env.iommu.translate(SID, 5, 0x1000, True, True), Translation)
    f = env.iommu.translate(SID, 6, 0x1000, True, True)
    assert isinstance(f, Fault) and f.reason == 0x85
    assert isinstance(env.iommu.translate(SID, 6, 0x1000, False, True), Translation)  # U/S=0 ok for PR=1


def test_fs_permissions_cumulative_across_levels() -> None:
    env = Env()
    env.enable()
    env.context(SID)
    pt = env.fs_table()
    pt.map(0x1000, 1 << 34, 4096)
    env.bind_fs(SID, 5, pt)
    path = walk_path(env, pt.root, 4, 0x1000)
    env.mem.write_u64(path[1], env.mem.read_u64(path[1]) & ~2)  # PDPE R/W=0
    assert isinstance(env.iommu.translate(SID, 5, 0x1000), Translation)
    f = env.iommu.translate(SID, 5, 0x1000, True)
    assert isinstance(f, Fault) and f.reason == 0x85
    env.mem.write_u64(path[0], env.mem.read_u64(path[0]) & ~4)  # PML4E U/S=0
    env.iommu.caches.flush_all()
    f = env.iommu.translate(SID, 5, 0x1000)
    assert isinstance(f, Fault) and f.reason == 0x81


def test_ss_cumulative_permissions_and_ad() -> None:
    env = Env()
    env.enable()
    env.context(SID)
    pt = env.ss_table()
    pt.map(0x20_0000, 1 << 34, 0x20_0000)  # one 2M leaf
    env.bind_ss(SID, 5, pt, ssade=True)
    path = walk_path(env, pt.root, 4, 0x20_0000)
    assert len(path) == 3
    t = env.iommu.translate(SID, 5, 0x20_1234, True)
    assert isinstance(t, Translation) and t.hpa == (1 << 34) + 0x1234 and t.page_shift == 21
    vals = [env.mem.read_u64(a) for a in path]
    assert all(v & SS_A for v in vals) and vals[-1] & SS_D and not vals[0] & SS_D
    env.mem.write_u64(path[0], env.mem.read_u64(path[0]) & ~2)  # PML4E W=0
    env.iommu.caches.flush_all()
    f = env.iommu.translate(SID, 5, 0x20_0000, True)
    assert isinstance(f, Fault) and f.reason == 0x85
    env.mem.write_u64(path[1], env.mem.read_u64(path[1]) & ~1)  # PDPE R=0 -> no cumulative R or W
    f = env.iommu.translate(SID, 5, 0x20_0000)
    assert isinstance(f, Fault) and f.reason == 0x79


def test_ss_ssade_off_leaves_ad_alone() -> None:
    env = Env()
    env.enable()
    env.context(SID)
    pt = env.ss_table(3)
    pt.map(0x1000, 1 << 34, 4096)
    env.bind_ss(SID, 5, pt, ssade=False)
    path = walk_path(env, pt.root, 3, 0x1000)
    assert isinstance(env.iommu.translate(SID, 5, 0x1000, True), Translation)
    assert not any(env.mem.read_u64(a) & (SS_A | SS_D) for a in path)


def _nested(env: Env, ss_write: bool = True) -> tuple[int, int]:
    env.enable()
    env.context(SID)
    ss = env.ss_table()
    fs = env.fs_table()  # FS tables at HPA; mapped 1:1 at GPA = HPA + 2^36 in SS
    data = 1 << 34
    fs.map(0x4000_0000, 0x8000_0000, 0x4000_0000)  # FS 1G page -> GPA 2G..3G
    ss.map(0x9000_0000, data, 0x20_0000, write=ss_write)  # SS 2M pages under it
    ss.map(0x9020_0000, data + 0x20_0000, 0x20_0000)
    for t in fs.tables():
        ss.map(t + (1 << 36), t, 4096)
    # rewrite FS pointers as GPAs
    for t in fs.tables():
        for i in range(512):
            v = env.mem.read_u64(t + 8 * i)
            if v & 1 and not v & 0x80:
                env.mem.write_u64(t + 8 * i, v + (1 << 36))
    env.pasid_entry(
        SID, 5, PasidEntry.encode(Pgtt.NESTED, 9, aw=2, ssptptr=ss.root, fsptptr=fs.root + (1 << 36), ssade=True)
    )
    return data, ss.root


def test_nested_1g_fs_over_2m_ss_and_final_permissions() -> None:
    env = Env()
    data, _ = _nested(env, ss_write=False)
    t = env.iommu.translate(SID, 5, 0x4000_0000 + 0x1000_0000 + 0x24_0008)
    assert isinstance(t, Translation)
    assert t.hpa == data + 0x24_0008 and t.page_shift == 21 and t.pgtt == Pgtt.NESTED
    f = env.iommu.translate(SID, 5, 0x4000_0000 + 0x1000_0000 + 0x1000, write=True)  # FS RW, SS RO
    assert isinstance(f, Fault) and f.reason == 0x85


def test_nested_sets_ss_ad_for_table_accesses() -> None:
    env = Env()
    _, ss_root = _nested(env)
    assert isinstance(env.iommu.translate(SID, 5, 0x5000_0000), Translation)
    # the SS leaf mapping the FS root table (GPA) got A and D (SSADE: table reads need write)
    pe = PasidEntry.from_bytes(env.mem.read(env.pasid_entry_addr(SID, 5), 64), env.caps)
    leaf = walk_path(env, ss_root, 4, pe.fsptptr)[-1]
    v = env.mem.read_u64(leaf)
    assert v & SS_A and v & SS_D


def test_output_page_overlapping_interrupt_window_2m() -> None:
    env = Env()
    env.enable()
    env.context(SID)
    pt = env.fs_table()
    pt.map(0x20_0000, 0xFEE0_0000, 0x20_0000)
    env.bind_fs(SID, 5, pt)
    f = env.iommu.translate(SID, 5, 0x20_0000 + 0x10_0000)  # maps to 0xFEF0_0000, page overlaps
    assert isinstance(f, Fault) and f.reason == 0x87


def test_ss_write_only_page_read_faults_after_a_write_filled_the_iotlb() -> None:
    """A second-stage leaf with W and no R: a write fills the IOTLB; a read must still fault 0x86
    (the IOTLB once answered reads from the write's entry, without the R permission)."""
    env = Env()
    env.enable()
    env.context(SID)
    pt = env.ss_table()
    pt.map(0x40_0000, 1 << 33, 0x1000, read=False, write=True)
    env.bind_ss(SID, 7, pt)
    w = env.iommu.translate(SID, 7, 0x40_0010, True)
    assert isinstance(w, Translation) and w.hpa == (1 << 33) + 0x10
    r = env.iommu.translate(SID, 7, 0x40_0020, False)
    assert isinstance(r, Fault) and r.reason == 0x86
    assert isinstance(env.iommu.translate(SID, 7, 0x40_0030, True), Translation)  # writes still hit
