"""Invalidation queue: wait descriptor, IQE reasons, wrap-around, and what each descriptor drops."""

from __future__ import annotations

import pytest

from siov_sim.model.iommu import Caps, DevTlbInvalidation, Fault, Translation
from siov_sim.model.iommu.regs import CTL_IM, CTL_IP, Fsts, Gcmd, Reg
from siov_sim.sw.iommu import descs

from . import env as env_mod
from .env import Env

pytestmark = pytest.mark.model

SID = 0x0200


def iqei(env: Env) -> int:
    return env.r64(Reg.IQERCD) & 0xF


def test_wait_status_write_and_interrupt() -> None:
    env = Env()
    env.enable()
    env.w32(Reg.IEDATA, 0x55)
    env.w32(Reg.IEADDR, 0xFEE0_2000)
    env.w32(Reg.IECTL, 0)
    slot = env.page()
    env.submit(descs.inv_wait(slot, 0xCAFE, irq=True))
    assert env.mem.read_u32(slot) == 0xCAFE
    assert env.r32(Reg.ICS) == 1 and env.msis == [(0xFEE0_2000, 0x55)]
    env.submit(descs.inv_wait(slot, 2, irq=True))
    assert len(env.msis) == 1  # IWC still set: no new event
    env.w32(Reg.ICS, 1)
    env.submit(descs.inv_wait(slot, 3, sw=False, irq=True))
    assert len(env.msis) == 2 and env.mem.read_u32(slot) == 2
    env.submit(descs.inv_wait(0, 0, sw=False, irq=False))  # SW=IF=0, FN=1: legal no-op
    assert env.r64(Reg.IQH) == env.r64(Reg.IQT)


def test_wait_interrupt_masked() -> None:
    env = Env()
    env.enable()
    env.w32(Reg.IECTL, CTL_IM)
    env.submit(descs.inv_wait(env.page(), 1, irq=True))
    assert env.msis == [] and env.r32(Reg.IECTL) & CTL_IP
    env.w32(Reg.IEADDR, 0xFEE0_0000)
    env.w32(Reg.IECTL, 0)
    assert len(env.msis) == 1 and not env.r32(Reg.IECTL) & CTL_IP


def test_wrap_around_all_queue_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    for qs in range(8):
        monkeypatch.setattr(env_mod, "IQ_QS", qs)
        env = Env()
        env.enable()
        slot = env.page()
        n = (4096 << qs) // 32
        for i in range(n + 5):
            env.submit(descs.inv_wait(slot, i))
            assert env.mem.read_u32(slot) == i
        assert env.r64(Reg.IQH) == (5 * 32) % (4096 << qs)
        assert not env.r32(Reg.FSTS) & Fsts.IQE


def _enable_fe(env: Env) -> None:
    env.w32(Reg.FEADDR, 0xFEE0_0000)
    env.w32(Reg.FEDATA, 0x30)
    env.w32(Reg.FECTL, 0)


@pytest.mark.parametrize(
    "desc,code",
    [
        ((0x1).to_bytes(8, "little") + bytes(24), 4),  # cc G=00
        ((0xB).to_bytes(8, "little") + bytes(24), 3),  # unknown type 0xB
        ((0x1 | 1 << 4 | 1 << 9).to_bytes(8, "little") + bytes(24), 3),  # type bits 11:9
        ((0x9).to_bytes(8, "little") + bytes(24), 3),  # page response without PRS
        ((0x1 | 1 << 4).to_bytes(8, "little") + bytes(16) + b"\1" + bytes(7), 4),  # upper half of a 128-bit type
        ((0x1 | 1 << 4 | 1 << 12).to_bytes(8, "little") + bytes(24), 4),  # cc reserved bit
        ((0x7 | 2 << 4).to_bytes(8, "little") + bytes(24), 4),  # pc G=10
        ((0x6 | 1 << 4).to_bytes(8, "little") + bytes(24), 4),  # p_iotlb G=01
        ((0x5 | 1 << 5 | 1 << 7).to_bytes(8, "little") + bytes(24), 4),  # wait PD without PDS
        ((0x5 | 1 << 5).to_bytes(8, "little") + (1).to_bytes(8, "little") + bytes(16), 4),  # status addr 1:0
        (descs.iotlb_psi(1, 0, 19), 4),  # AM > MAMV
    ],
)
def test_iqe_descriptor_errors(desc: bytes, code: int) -> None:
    env = Env()
    env.enable()
    _enable_fe(env)
    slot = env.page()
    env.submit(descs.inv_wait(slot, 1), desc, descs.inv_wait(slot, 7))
    assert env.r32(Reg.FSTS) & Fsts.IQE and iqei(env) == code
    assert env.mem.read_u32(slot) == 1  # earlier descriptors completed, later ones not
    assert env.r64(Reg.IQH) == 32  # head on the bad descriptor
    assert env.msis == [(0xFEE0_0000, 0x30)]
    env.submit(descs.inv_wait(slot, 9))  # tail writes while IQE=1 don't fetch
    assert env.mem.read_u32(slot) == 1
    env.mem.write(env.iq + 32, descs.inv_wait(slot, 5))  # Linux: overwrite the bad slot, clear IQE
    env.w32(Reg.FSTS, Fsts.IQE)
    assert env.mem.read_u32(slot) == 9 and env.r64(Reg.IQH) == env.r64(Reg.IQT)


def test_iqe_psi_without_cap_psi() -> None:
    env = Env(Caps(psi=False))
    env.enable()
    env.submit(descs.iotlb_psi(1, 0, 0))
    assert iqei(env) == 4


def test_iqe_devtlb_without_dt() -> None:
    env = Env(Caps(dt=False))
    env.enable()
    env.submit(descs.devtlb_global(1))
    assert iqei(env) == 3


def test_iqe_tail_errors() -> None:
    env = Env()
    env.enable()
    env.w64(Reg.IQT, 0x10)  # 256-bit mode, bit 4 set
    assert iqei(env) == 6
    env2 = Env()
    env2.enable()
    env2.w64(Reg.IQT, 4096)  # QS=0: 4 KiB queue -> tail beyond size
    assert iqei(env2) == 1


def test_iqe_dw0_in_scalable_mode_and_fetch_error() -> None:
    env = Env()
    env.enable(dw=False)
    env.mem.write(env.iq, descs.inv_wait(env.page(), 1)[:16])
    env.w64(Reg.IQT, 16)
    assert iqei(env) == 5
    env2 = Env()
    env2.iq = 1 << 33  # queue outside RAM
    env2.enable()
    env2.w64(Reg.IQT, 32)
    assert iqei(env2) == 2


def test_iqe_invalid_ttm() -> None:
    env = Env()
    env.enable(ttm=2)
    env.submit(descs.inv_wait(env.page(), 1))
    assert iqei(env) == 7


def test_devtlb_descriptors_forwarded() -> None:
    env = Env()
    got: list[DevTlbInvalidation] = []
    env.iommu.invq.devtlb_sink = got.append
    env.enable()
    env.submit(descs.devtlb(0x300, 0x20_0000, 0x20_0000), descs.p_devtlb(0x300, 7), descs.devtlb(0x300, 0x5000, 4096))
    assert got[0] == DevTlbInvalidation(0x300, None, 0x20_0000, 0x20_0000)
    assert got[1].pasid == 7 and got[1].size >= 1 << 63
    assert got[2] == DevTlbInvalidation(0x300, None, 0x5000, 4096)


# ------------------------------------------------------------------- what each descriptor drops
def _two_domains(env: Env) -> tuple[int, int]:
    """PASID 5 -> FS (DID 5), PASID 6 -> SS (DID 6), RID_PASID -> PT (DID 1); all cached."""
    env.enable()
    env.context(SID)
    fs, ss = env.fs_table(), env.ss_table()
    a, b = env.page(), env.page()
    fs.map(0x1000, a, 4096)
    ss.map(0x1000, b, 4096)
    env.bind_fs(SID, 5, fs, did=5)
    env.bind_ss(SID, 6, ss, did=6)
    env.bind_pt(SID, 0, did=1)
    for p in (5, 6, None):
        assert isinstance(env.iommu.translate(SID, p, 0x1000), Translation)
    return a, b


def _keys(env: Env) -> set[int]:
    return {e.pasid for e in env.iommu.caches.iotlb.values()}


@pytest.mark.parametrize(
    "desc,left",
    [
        (descs.iotlb_global(), set()),
        (descs.iotlb_dsi(5), {6, 0}),
        (descs.iotlb_psi(6, 0x1000, 0), {5, 0}),
        (descs.iotlb_psi(6, 0x2000, 0), {5, 6, 0}),  # range miss keeps the SS entry
        (descs.iotlb_psi(5, 0x9000_0000, 0), {6, 0}),  # FS entries: whole DID dropped
        (descs.piotlb_pasid(5, 5), {6, 0}),
        (descs.piotlb_page(5, 5, 0x1000, 0), {6, 0}),
        (descs.piotlb_page(5, 5, 0x2000, 0), {5, 6, 0}),
        (descs.piotlb_page(6, 6, 0x1000, 0), {5, 6, 0}),  # G=11 keeps SS entries
        (descs.piotlb_page(5, 5, 0, 63), {6, 0}),  # any AM accepted
        (descs.piotlb_pasid(6, 6), {5, 0}),  # G=10 drops any PGTT
    ],
)
def test_iotlb_invalidation_scope(desc: bytes, left: set[int]) -> None:
    env = Env()
    _two_domains(env)
    env.submit(desc)
    assert not env.r32(Reg.FSTS) & Fsts.IQE
    assert _keys(env) == left


def test_pasid_cache_scope() -> None:
    env = Env()
    _two_domains(env)
    pc = env.iommu.caches.pasid
    assert set(pc) == {(SID, 5), (SID, 6), (SID, 0)}
    env.submit(descs.pc_pasid(5, 6))  # wrong DID: nothing
    assert len(pc) == 3
    env.submit(descs.pc_pasid(6, 6))
    assert set(pc) == {(SID, 5), (SID, 0)}
    env.submit(descs.pc_domain(1))
    assert set(pc) == {(SID, 5)}
    env.submit(descs.pc_global())
    assert not pc


def test_context_cache_device_selective_function_mask() -> None:
    env = Env()
    env.enable()
    for fn in range(8):
        sid = SID | fn
        env.context(sid)
        env.bind_pt(sid, 0)
        env.iommu.translate(sid, None, 0x1000)
    cc = env.iommu.caches.context
    env.submit(descs.cc_device(SID | 1, fm=0))
    assert SID | 1 not in cc and len(cc) == 7
    env.submit(descs.cc_device(SID | 6, fm=1))  # functions 2 and 6
    assert SID | 2 not in cc and len(cc) == 5
    env.submit(descs.cc_device(SID, fm=3))
    assert not cc
    env.iommu.translate(SID, None, 0x1000)
    env.submit((0x1 | 2 << 4 | 0x1234 << 16).to_bytes(8, "little") + bytes(24))  # domain-selective = global
    assert not cc


# ------------------------------------------------------------------- stale caches
def test_stale_iotlb_until_invalidated() -> None:
    env = Env()
    a, _ = _two_domains(env)
    fs_root = env.iommu.caches.pasid[(SID, 5)].entry.fsptptr
    del fs_root
    # software remaps VA 0x1000 of PASID 5 to another page without invalidating
    pe = env.iommu.caches.pasid[(SID, 5)].entry
    new = env.page()
    t = pe.fsptptr
    for lvl in (4, 3, 2):
        t = env.mem.read_u64(t + ((0x1000 >> (3 + 9 * lvl)) & 0x1FF) * 8) & 0x000F_FFFF_FFFF_F000
    env.mem.write_u64(t + 8, new | 7)
    got = env.iommu.translate(SID, 5, 0x1000)
    assert isinstance(got, Translation) and got.hpa == a  # stale
    env.submit(descs.piotlb_page(5, 5, 0x1000, 0))
    got = env.iommu.translate(SID, 5, 0x1000)
    assert isinstance(got, Translation) and got.hpa == new


def test_stale_pasid_entry_until_pc_invalidation() -> None:
    env = Env()
    _two_domains(env)
    env.mem.write_u64(env.pasid_entry_addr(SID, 6), 0)  # clear P without invalidation
    env.submit(descs.iotlb_dsi(6))  # IOTLB only: the PASID cache still has the entry
    assert isinstance(env.iommu.translate(SID, 6, 0x1000), Translation)
    env.submit(descs.pc_pasid(6, 6))  # the IOTLB was refilled from the stale PASID entry...
    assert isinstance(env.iommu.translate(SID, 6, 0x1000), Translation)
    env.submit(descs.pc_pasid(6, 6), descs.iotlb_dsi(6))  # ...so the Table-28 recipe needs both
    f = env.iommu.translate(SID, 6, 0x1000)
    assert isinstance(f, Fault) and f.reason == 0x59


def test_stale_context_until_cc_invalidation() -> None:
    env = Env()
    _two_domains(env)
    env.context(SID, p=False)
    env.submit(descs.iotlb_global(), descs.pc_global())
    assert isinstance(env.iommu.translate(SID, None, 0x1000), Translation)
    env.submit(descs.cc_device(SID), descs.pc_global(), descs.iotlb_global())
    f = env.iommu.translate(SID, None, 0x1000)
    assert isinstance(f, Fault) and f.reason == 0x41


def test_pgtt_change_pt_to_fs_needs_pc_invalidation() -> None:
    env = Env()
    env.enable()
    env.context(SID)
    env.bind_pt(SID, 5, did=1)
    assert env.iommu.translate(SID, 5, 0x1000) == Translation(0x1000, 12, 1, 5, 4)
    fs = env.fs_table()
    page = env.page()
    fs.map(0x1000, page, 4096)
    env.bind_fs(SID, 5, fs, did=1)
    env.submit(descs.piotlb_pasid(1, 5))  # IOTLB flushed, PASID cache still says PT
    assert env.iommu.translate(SID, 5, 0x1000) == Translation(0x1000, 12, 1, 5, 4)
    env.submit(descs.pc_pasid(1, 5), descs.piotlb_pasid(1, 5))
    t = env.iommu.translate(SID, 5, 0x1000)
    assert isinstance(t, Translation) and t.hpa == page and t.pgtt == 1


def test_no_cache_mode_sees_changes_immediately() -> None:
    env = Env(caching=False)
    _two_domains(env)
    env.mem.write_u64(env.pasid_entry_addr(SID, 6), 0)
    f = env.iommu.translate(SID, 6, 0x1000)
    assert isinstance(f, Fault)


def test_esrtps_srtp_drops_caches() -> None:
    env = Env()
    _two_domains(env)
    env.gcmd(Gcmd.SRTP)
    c = env.iommu.caches
    assert not c.iotlb and not c.pasid and not c.context


def test_fractured_large_page_dropped_by_any_overlapping_invalidation() -> None:
    env = Env()
    env.enable()
    env.context(SID)
    fs = env.fs_table()
    fs.map(0x20_0000, 1 << 34, 0x20_0000)
    env.bind_fs(SID, 5, fs, did=5)
    for off in (0, 0x1000, 0x1F_F000):
        assert isinstance(env.iommu.translate(SID, 5, 0x20_0000 + off), Translation)
    assert len(env.iommu.caches.iotlb) == 3  # one slice per 4 KiB page used
    env.submit(descs.piotlb_page(5, 5, 0x20_0000 + 0x5000, 0))  # AM=0 inside the 2M page
    assert not env.iommu.caches.iotlb
    for off in (0, 0x1000):
        env.iommu.translate(SID, 5, 0x20_0000 + off)
    env.submit(descs.piotlb_page(5, 5, 0x20_0000, 9))
    assert not env.iommu.caches.iotlb


def test_qie_disable_refused_while_queue_stalled() -> None:
    env = Env()
    env.enable()
    env.submit((0xB).to_bytes(8, "little") + bytes(24))  # IQE: head stays behind tail
    env.gcmd(Gcmd.QIE, on=False)
    assert env.r32(Reg.GSTS) & Gcmd.QIE
