"""Host IOMMU driver against the model through a fake HostBus (Linux-style flows)."""

from __future__ import annotations

import pytest

from siov_sim.model.iommu import Caps, Fault, Translation
from siov_sim.model.iommu.regs import Fsts, Gcmd, Reg
from siov_sim.sw.iommu import DomainKind, IommuDriver, IommuError

from ...model.iommu.env import run
from .fakebus import FakeBus

pytestmark = pytest.mark.sw

SID = 0x0100


def up(caps: Caps | None = None, **kw: object) -> tuple[FakeBus, IommuDriver]:
    bus = FakeBus(caps)
    drv = IommuDriver(bus, **kw)  # type: ignore[arg-type]
    run(drv.bring_up())
    return bus, drv


def test_bring_up_sequence() -> None:
    bus, drv = up()
    sts = bus.iommu.mmio_read(Reg.GSTS, 4)
    assert sts & Gcmd.TE and sts & Gcmd.QIE and sts & Gcmd.SRTP
    assert bus.iommu.mmio_read(Reg.RTADDR, 8) == drv.root | 1 << 10
    iqa = bus.iommu.mmio_read(Reg.IQA, 8)
    assert iqa & 1 << 11 and iqa & 7 == 1
    assert bus.iommu.mmio_read(Reg.FECTL, 4) == 0
    # order: QI before root pointer, root pointer before TE (as Linux)
    offs = [o for _, o, _ in bus.mmio_log]
    assert offs.index(Reg.IQA) < offs.index(Reg.RTADDR) < offs.index(Reg.FEDATA)
    assert bus.irq.allocated() == 1


def test_bring_up_without_esrtps_sends_global_invalidations() -> None:
    bus, _ = up(Caps(esrtps=False))
    assert bus.iommu.invq.completed == 4  # cc, pc, iotlb + wait


def test_all_translation_types_end_to_end() -> None:
    bus, drv = up()
    buf = bus.alloc.alloc(0x40_0000, align=0x20_0000)
    ss = drv.alloc_domain(DomainKind.SECOND_STAGE)
    ss3 = drv.alloc_domain(DomainKind.SECOND_STAGE, levels=3)
    fs = drv.alloc_domain(DomainKind.FIRST_STAGE)
    fs5 = drv.alloc_domain(DomainKind.FIRST_STAGE, levels=5)
    nst = drv.alloc_domain(DomainKind.NESTED, parent=ss)
    pt = drv.alloc_domain(DomainKind.PASS_THROUGH)
    ss.map(0x1000_0000, buf, 0x20_0000)
    ss3.map(0x2000, buf + 0x5000, 0x1000)
    fs.map(0x7FFF_0000_0000, buf + 0x1000, 0x1000)
    fs5.map(0x00FF_0000_0000_0000, buf + 0x2000, 0x1000)
    nst.map(0x5000, 0x1000_0000 + 0x3000, 0x1000)
    run(drv.attach_device(SID, ss))
    for pasid, dom in ((5, fs), (6, nst), (7, pt), (8, fs5), (9, ss3)):
        run(drv.bind_pasid(SID, pasid, dom))
    cases = [
        (None, 0x1000_0123, buf + 0x123, 21, 2),
        (5, 0x7FFF_0000_0456, buf + 0x1456, 12, 1),
        (6, 0x5010, buf + 0x3010, 12, 3),
        (7, 0xABC_D000, 0xABC_D000, 12, 4),
        (8, 0x00FF_0000_0000_0008, buf + 0x2008, 12, 1),
        (9, 0x2FF0, buf + 0x5FF0, 12, 2),
    ]
    for pasid, va, hpa, shift, pgtt in cases:
        t = bus.xlate(SID, pasid, va, write=True)
        assert isinstance(t, Translation), (pasid, t)
        assert (t.hpa, t.page_shift, t.pgtt) == (hpa, shift, pgtt)
    assert bus.dma_write(SID, 6, 0x5010, b"nested!") is None
    assert bus.mem.read(buf + 0x3010, 7) == b"nested!"
    assert bus.dma_read(SID, None, 0x1000_3010, 7) == b"nested!"


def test_unmap_invalidates_and_frees_after() -> None:
    bus, drv = up()
    fs = drv.alloc_domain(DomainKind.FIRST_STAGE)
    buf = bus.alloc.alloc(0x2000)
    fs.map(0x4000_0000, buf, 0x2000)
    run(drv.bind_pasid(SID, 5, fs))
    assert isinstance(bus.xlate(SID, 5, 0x4000_1000), Translation)
    before = bus.alloc.in_use()
    run(fs.unmap(0x4000_0000, 0x2000))
    f = bus.xlate(SID, 5, 0x4000_1000)
    assert isinstance(f, Fault) and f.reason == 0x71  # no stale IOTLB entry
    assert bus.alloc.in_use() == before - 3 * 4096  # PDPT, PD, PT tables freed after the flush


def test_unbind_then_rebind_same_pasid_other_domain() -> None:
    bus, drv = up()
    a, b = drv.alloc_domain(DomainKind.FIRST_STAGE), drv.alloc_domain(DomainKind.SECOND_STAGE)
    pa, pb = bus.alloc.alloc(4096), bus.alloc.alloc(4096)
    a.map(0x1000, pa, 4096)
    b.map(0x1000, pb, 4096)
    run(drv.bind_pasid(SID, 3, a))
    assert bus.xlate(SID, 3, 0x1000).hpa == pa  # type: ignore[union-attr]
    run(drv.unbind_pasid(SID, 3))
    f = bus.xlate(SID, 3, 0x1000)
    assert isinstance(f, Fault) and f.reason == 0x59
    run(drv.bind_pasid(SID, 3, b))
    assert bus.xlate(SID, 3, 0x1000).hpa == pb  # type: ignore[union-attr]
    assert not b.devices.isdisjoint({(SID, 3)}) and not a.devices


def test_supervisor_binding_and_user_pages() -> None:
    bus, drv = up()
    fs = drv.alloc_domain(DomainKind.FIRST_STAGE)
    p = bus.alloc.alloc(4096)
    fs.map(0xFFFF_8000_0000_0000, p, 4096, user=False, write=False)  # kernel half, read-only
    run(drv.bind_pasid(SID, 4, fs, supervisor=True))
    run(drv.bind_pasid(SID, 5, fs))
    t = bus.xlate(SID, 4, 0xFFFF_8000_0000_0010, write=True, pmr=True)  # WPE=0: write allowed
    assert isinstance(t, Translation) and t.hpa == p + 0x10
    f = bus.xlate(SID, 5, 0xFFFF_8000_0000_0010, pmr=True)
    assert isinstance(f, Fault) and f.reason == 0x5D
    f = bus.xlate(SID, 4, 0xFFFF_8000_0000_0010)  # user request on a supervisor page
    assert isinstance(f, Fault) and f.reason == 0x81


def test_fault_interrupt_and_drain() -> None:
    bus, drv = up()
    run(drv.attach_device(SID, drv.alloc_domain(DomainKind.SECOND_STAGE)))
    f1 = bus.xlate(SID, None, 0x9000, write=True)
    f2 = bus.xlate(SID, 0x12345, 0x8000)
    assert isinstance(f1, Fault) and isinstance(f2, Fault)
    assert drv.fault_irqs == 1
    assert drv.fault_pending is not None and drv.fault_pending.is_set()
    seen: list[int] = []
    drv.fault_handlers.append(lambda r: seen.append(r.reason))
    recs = run(drv.drain_faults())
    assert seen == [0x79, 0x51] and not drv.fault_pending.is_set()
    assert [(r.sid, r.pasid, r.addr, r.reason, r.write) for r in recs] == [
        (SID, None, 0x9000, 0x79, True),
        (SID, 0x12345, 0x8000, 0x51, False),  # no PASID table for that dir slot
    ]
    assert bus.iommu.mmio_read(Reg.FSTS, 4) & (Fsts.PPF | Fsts.PFO) == 0
    bus.xlate(SID, None, 0xA000)
    assert drv.fault_irqs == 2


def test_errors_are_typed() -> None:
    _bus, drv = up()
    fs = drv.alloc_domain(DomainKind.FIRST_STAGE)
    with pytest.raises(IommuError):
        run(drv.bind_pasid(SID, 0, fs))
    with pytest.raises(IommuError):
        run(drv.unbind_pasid(SID, 9))
    run(drv.bind_pasid(SID, 9, fs))
    with pytest.raises(IommuError):
        run(drv.bind_pasid(SID, 9, fs))
    fs.map(0x1000, 0x10_0000, 4096)
    with pytest.raises(IommuError):
        fs.map(0x1000, 0x10_0000, 4096)
    with pytest.raises(IommuError):
        run(drv.free_domain(fs))
    with pytest.raises(IommuError):
        drv.alloc_domain(DomainKind.NESTED)


def test_iqe_reported_as_error_and_queue_recovers() -> None:
    bus, drv = up()
    bad = (0xB).to_bytes(8, "little") + bytes(24)
    with pytest.raises(IommuError, match="IQERCD=0x3"):
        run(drv.qi_submit_sync([bad]))
    assert not bus.iommu.mmio_read(Reg.FSTS, 4) & Fsts.IQE
    run(drv.qi_submit_sync([]))  # queue works again


def test_detach_and_shutdown_free_everything() -> None:
    bus, drv = up()
    base_use = bus.alloc.in_use()
    ss = drv.alloc_domain(DomainKind.SECOND_STAGE)
    fs = drv.alloc_domain(DomainKind.FIRST_STAGE)
    ss.map(0, 0x10_0000, 0x20_0000)
    fs.map(0x1000, 0x20_0000, 4096)
    for sid in (SID, SID | 0x80, 0x0200):
        run(drv.attach_device(sid, ss))
        run(drv.bind_pasid(sid, 77, fs))
    nst = drv.alloc_domain(DomainKind.NESTED, parent=ss)
    nst.map(0x3000, 0x1000, 4096)
    run(drv.bind_pasid(0x0200, 78, nst))
    assert isinstance(bus.xlate(0x0200, 78, 0x3000), Translation)
    run(drv.unbind_pasid(0x0200, 78))
    run(drv.free_domain(nst))  # releases its guest tables and their parent mappings
    run(drv.detach_device(SID))
    f = bus.xlate(SID, None, 0x1000)
    assert isinstance(f, Fault) and f.reason == 0x41
    assert isinstance(bus.xlate(SID | 0x80, 77, 0x1000), Translation)
    run(drv.shutdown())
    for d in (ss, fs):
        run(drv.free_domain(d))
    assert not bus.iommu.mmio_read(Reg.GSTS, 4) & (Gcmd.TE | Gcmd.QIE)
    assert bus.alloc.in_use() == 0 and base_use > 0
    assert bus.irq.allocated() == 0


def test_caching_mode_invalidates_on_bind() -> None:
    bus, drv = up(Caps(cm=True))
    n = bus.iommu.invq.completed
    run(drv.bind_pasid(SID, 5, drv.alloc_domain(DomainKind.FIRST_STAGE)))
    assert bus.iommu.invq.completed == n + 3
