"""Register file: reset values, CAP/ECAP consistency, GCMD handshakes, W1C/RO, 32/64-bit access."""

from __future__ import annotations

import pytest

from siov_sim.model.iommu import Caps, Fault, Translation
from siov_sim.model.iommu.regs import CTL_IM, Gcmd, Reg

from .env import Env

pytestmark = pytest.mark.model


def test_reset_values_and_caps() -> None:
    env = Env()
    r = env.r64
    assert env.r32(Reg.GSTS) == 0 and r(Reg.RTADDR) == 0
    assert env.r32(Reg.FECTL) == CTL_IM and env.r32(Reg.IECTL) == CTL_IM and env.r32(Reg.PECTL) == CTL_IM
    cap, ecap = r(Reg.CAP), r(Reg.ECAP)
    smts, qi, prs, dt, nest, fsts, ssts = (ecap >> b & 1 for b in (43, 1, 29, 2, 26, 47, 46))
    assert smts and qi and not prs and nest and fsts and ssts and dt
    assert not cap >> 4 & 1  # RWBF = 0 with SMTS
    assert (ecap >> 35 & 0x1F) == 19  # 20-bit PASIDs
    fro, nfr = (cap >> 24 & 0x3FF) * 16, (cap >> 40 & 0xFF) + 1
    iro = (ecap >> 8 & 0x3FF) * 16
    assert fro + 16 * nfr <= 0x1000 and iro + 16 <= 0x1000
    assert nfr == 8 and fro == 0x220 and iro == 0xF0
    assert cap >> 60 & 1 and cap >> 56 & 1  # FS5LP, FS1GP
    snap = env.iommu.regs.snapshot()
    env.enable()
    env.iommu.reset()
    assert env.iommu.regs.snapshot() == snap


def test_gcmd_reads_zero_and_srtp_latches() -> None:
    env = Env()
    env.w64(Reg.RTADDR, env.root | 1 << 10)
    assert env.r32(Reg.GSTS) == 0
    env.gcmd(Gcmd.SRTP)
    assert env.r32(Reg.GSTS) & Gcmd.SRTP  # RTPS
    assert env.r32(Reg.GCMD) == 0
    env.gcmd(Gcmd.TE)
    sts = env.r32(Reg.GSTS)
    assert sts & Gcmd.TE and sts & Gcmd.SRTP
    env.gcmd(Gcmd.QIE)  # TE preserved through the (GSTS & mask) | bit recipe
    assert env.r32(Reg.GSTS) & Gcmd.TE and env.r32(Reg.GSTS) & Gcmd.QIE


def test_rtaddr_change_without_srtp_has_no_effect() -> None:
    env = Env()
    env.enable()
    env.context(0x100)
    env.bind_pt(0x100, 0)
    assert isinstance(env.iommu.translate(0x100, None, 0x1000), Translation)
    env.w64(Reg.RTADDR, env.page() | 1 << 10)  # empty table, not latched
    assert isinstance(env.iommu.translate(0x100, None, 0x2000), Translation)
    env.gcmd(Gcmd.SRTP)  # now latched (ESRTPS flushes caches too)
    f = env.iommu.translate(0x100, None, 0x1000)
    assert isinstance(f, Fault) and f.reason == 0x39


def test_te_off_passes_through_and_flushes() -> None:
    env = Env()
    env.enable()
    env.context(0x100)
    env.bind_pt(0x100, 0, did=1)
    env.iommu.translate(0x100, None, 0x1000)
    assert env.iommu.caches.iotlb and env.iommu.caches.context
    env.gcmd(Gcmd.TE, on=False)
    assert not env.iommu.caches.iotlb and not env.iommu.caches.context and not env.iommu.caches.pasid
    t = env.iommu.translate(0x999, 7, 0xFEE0_0000)
    assert isinstance(t, Translation) and t.hpa == 0xFEE0_0000 and t.pgtt == 0


def test_w1c_ro_and_split_accesses() -> None:
    env = Env()
    env.w64(Reg.IQA, 0x1234_5000 | 1 << 11 | 3)
    assert env.r64(Reg.IQA) == 0x1234_5000 | 1 << 11 | 3
    assert env.r32(Reg.IQA) == 0x1234_5000 | 1 << 11 | 3 and env.r32(Reg.IQA + 4) == 0
    env.w32(Reg.IQA + 4, 0x12)
    assert env.r64(Reg.IQA) >> 32 == 0x12
    env.w64(Reg.CAP, 0)  # RO
    assert env.r64(Reg.CAP) == env.caps.cap_value
    env.w32(Reg.FSTS, 0xFFFF_FFFF)  # W1C of zero bits: no effect
    assert env.r32(Reg.FSTS) == 0
    env.w32(Reg.FEADDR, 0xFEE0_1003)
    assert env.r32(Reg.FEADDR) == 0xFEE0_1000  # bits 1:0 reserved
    env.w32(Reg.ICS, 1)
    assert env.r32(Reg.ICS) == 0
    # reads outside the window / odd sizes never raise
    assert env.iommu.mmio_read(0x2000, 4) == 0 and env.iommu.mmio_read(0x10, 3) == 0
    env.iommu.mmio_write(0xFFE, 8, 1)


def test_register_based_invalidation_ignored_in_sm() -> None:
    env = Env()
    env.enable()
    env.w64(Reg.CCMD, 1 << 63 | 1 << 61)
    assert env.r64(Reg.CCMD) >> 59 & 0x1F == 1 << 2  # ICC cleared, CAIG=00, CIRG kept
    iotlb = env.caps.iro * 16 + 8
    env.w64(iotlb, 1 << 63 | 1 << 60)
    assert env.r64(iotlb) >> 63 == 0 and env.r64(iotlb) >> 57 & 3 == 0


def test_qie_disable_only_when_quiesced() -> None:
    env = Env()
    env.enable()
    env.gcmd(Gcmd.QIE, on=False)
    assert not env.r32(Reg.GSTS) & Gcmd.QIE and env.r64(Reg.IQH) == 0


def test_caps_parameterised() -> None:
    env = Env(Caps(nfr=1, fs5lp=False, sagaw=0b00100, mgaw=48))
    cap = env.r64(Reg.CAP)
    assert cap >> 40 & 0xFF == 0 and not cap >> 60 & 1 and cap >> 8 & 0x1F == 0b00100 and cap >> 16 & 0x3F == 47


def test_gcmd_several_bits_in_one_write() -> None:
    env = Env()
    env.w64(Reg.RTADDR, env.root | 1 << 10)
    env.w64(Reg.IQA, env.iq | 1 << 11)
    env.w32(Reg.GCMD, Gcmd.SRTP | Gcmd.QIE | Gcmd.TE)
    sts = env.r32(Reg.GSTS)
    assert sts & Gcmd.SRTP and sts & Gcmd.QIE and sts & Gcmd.TE
    env.w32(Reg.GCMD, 0)  # TE and QIE off together (queue is quiesced)
    assert env.r32(Reg.GSTS) & (Gcmd.QIE | Gcmd.TE) == 0
    env.w64(Reg.GCMD, Gcmd.TE | 0xFFFF_FFFF << 32)  # 64-bit write over GCMD+GSTS: GSTS is RO
    assert env.r32(Reg.GSTS) & Gcmd.TE and env.r32(Reg.GSTS) >> 24 & 0x7 == 0
