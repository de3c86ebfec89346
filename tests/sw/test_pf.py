"""PF driver probe against the fake endpoint: DVSEC/PASID discovery, page size, IOMMU up."""

from __future__ import annotations

import pytest

from siov_sim.sw.driver import PfDriver, PfError, pci
from siov_sim.sw.driver.regs_adi import RegAdiControl
from siov_sim.sw.iommu import IommuDriver

from .fakes import DVSEC_OFF, PASID_OFF, PF_BDF, FakeHost
from .stack import build, run

pytestmark = pytest.mark.sw


def test_probe_finds_dvsec_and_pasid_and_enables_them() -> None:
    async def body() -> None:
        st = await build(num_adis=8)
        caps = st.pf.caps
        assert caps.dvsec == DVSEC_OFF and caps.pasid_cap == PASID_OFF
        assert caps.ims and caps.homogeneous and caps.max_pasid_width == 20
        assert st.host.dev.pasid_enabled and st.host.dev.bus_master
        assert st.pf.num_adis == 8 and st.pf.free_adi_count() == 8
        assert st.pf.portal_addr(3) == st.pf.bar(2).addr + 3 * 4096
        assert st.iommu.up and st.host.dev.pf_ctrl == 1

    run(body())


def test_probe_sets_system_page_size() -> None:
    async def body() -> None:
        st = await build(num_adis=4, page_size=8192)
        raw = st.host.dev.cfg_read(DVSEC_OFF + pci.SIOV_DVSEC_SYS_PAGE_SIZE, 4)
        assert int.from_bytes(raw, "little") == 2

    run(body())


def test_probe_rejects_unsupported_page_size() -> None:
    async def body() -> None:
        host = FakeHost(4, page_sizes=0x1)
        pf = PfDriver(host, PF_BDF, IommuDriver(host), RegAdiControl.create, page_size=8192)
        with pytest.raises(PfError, match="not in supported"):
            await pf.probe()

    run(body())


def test_probe_without_dvsec_fails() -> None:
    async def body() -> None:
        host = FakeHost(4)
        host.dev.cfg[DVSEC_OFF + 8] = 0x06  # DVSEC ID 6: not SIOV
        pf = PfDriver(host, PF_BDF, IommuDriver(host), RegAdiControl.create)
        with pytest.raises(PfError, match="DVSEC"):
            await pf.probe()

    run(body())


def test_bar_sizing_reads_sizes() -> None:
    async def body() -> None:
        host = FakeHost(8)
        bars = await pci.read_bars(host, PF_BDF)
        assert bars[0].size == 1 << 20 and bars[0].is64
        assert bars[2].size == 8 * 8192

    run(body())


def test_adi_allocation_accounting() -> None:
    async def body() -> None:
        st = await build(num_adis=4)
        got = st.pf.alloc_adis(3)
        assert st.pf.free_adi_count() == 1
        with pytest.raises(PfError):
            st.pf.alloc_adis(2)
        st.pf.free_adis(got)
        with pytest.raises(PfError):
            st.pf.free_adis([got[0]])
        assert st.pf.free_adi_count() == 4

    run(body())


def test_pf_msix_reports_adi_errors_and_drains() -> None:
    async def body() -> None:
        from siov_sim.sw.driver.abi import ErrorCode
        from siov_sim.sw.driver.adi import AdiConfig

        st = await build(num_adis=4)
        assert st.host.irq.allocated() >= 3  # IOMMU fault event + 2 PF vectors
        pf = st.pf
        # an ADI error: enable with a misaligned ring
        await pf.adi.configure(2, AdiConfig(ring_base=0x1008, ring_size=8, cpl_base=0x2000, pasid=5))
        with pytest.raises(PfError):
            await pf.adi.enable(2)
        assert pf.pf_irqs == 1
        evs = await pf.service_events()
        assert [(e.kind, e.adi, e.error) for e in evs] == [("adi_error", 2, ErrorCode.BAD_RING_ALIGN)]
        assert st.host.dev.pf_cause == 0  # acknowledged
        # a drain with nothing outstanding finishes at once and says so
        await pf.adi.reset(2)
        await pf.adi.configure(2, AdiConfig(ring_base=0x1000, ring_size=8, cpl_base=0x2000, pasid=5))
        await pf.adi.enable(2)
        await pf.adi.drain(2)
        assert pf.pf_irqs == 2
        assert [(e.kind, e.adi) for e in await pf.service_events()] == [("drain_done", 2)]
        assert len(pf.events) == 2

    run(body())
