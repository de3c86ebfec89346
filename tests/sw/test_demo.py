"""The make-sim scenario on the fake host: every step succeeds and nothing is left over."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from siov_sim.sw.guest.demo import run_bandwidth, run_demo

from .fakes import IommuSpaces
from .stack import build, run

pytestmark = pytest.mark.sw


@pytest.mark.parametrize("vdevs", [1, 4, 6])
def test_demo_runs_all_driver_kinds_and_cleans_up(vdevs: int) -> None:
    async def body() -> None:
        st = await build(num_adis=16)
        base = st.host.alloc.in_use()
        lines: list[str] = []
        rep = await run_demo(st.host, st.pf, st.iommu, vdevs=vdevs, size=8192, progress=lines.append)
        assert len(rep.vdevs) == vdevs
        assert [v.driver for v in rep.vdevs] == ["avf", "pmd", "sva", "avf", "pmd", "sva"][:vdevs]
        for v in rep.vdevs:
            assert v.errors == 0, v
            assert v.ops >= 2 * v.queues and v.bytes >= 8192 * v.queues
            if v.driver in ("avf", "sva"):
                assert v.interrupts >= 2 * v.queues  # batches raise one interrupt each
        if vdevs >= 4:
            iso = rep.isolation
            assert iso["blocked"] and iso["victim_intact"] and iso["recovered"]
            assert iso["pf_saw_adi_error"]
            offender = next(v for v in rep.vdevs if v.uuid == iso["offender"])
            assert iso["fault_pasid"] == offender.pasid and offender.faults >= 1
        # AVF guests run behind their own vIOMMU (guest tables nested on the second stage); the
        # first one shows a forgotten guest invalidation (stale IOTLB entry) and the late one
        vi = rep.viommu
        assert vi["stale_seen"] and vi["fresh_after_invalidation"] and vi["skipped"] == 1
        assert isinstance(vi["forwarded"], int) and vi["forwarded"] >= 2 and "vIOMMU" in rep.text()
        assert rep.leaks == {"vdevs": 0, "adis": 0, "pasids": 0, "switch_addrs": 0}
        dev = st.iommu._devices[0x0100]
        assert st.host.alloc.in_use() - 4096 * len(dev.pasid_tables) <= base
        assert "removed" in rep.text() and lines
        json.dumps(asdict(rep))

    run(body())


def test_demo_fits_vdevs_into_few_adis() -> None:
    async def body() -> None:
        st = await build(num_adis=4)
        rep = await run_demo(st.host, st.pf, st.iommu, vdevs=4, size=4096, batch=2)
        assert [v.type_id for v in rep.vdevs] == ["siov-1q"] * 4
        assert all(v.errors == 0 for v in rep.vdevs) and rep.isolation["blocked"]
        st2 = await build(num_adis=8)
        rep2 = await run_demo(st2.host, st2.pf, st2.iommu, vdevs=4, size=4096, batch=2)
        assert [v.type_id for v in rep2.vdevs] == ["siov-4q", "siov-1q", "siov-1q", "siov-1q"]

    run(body())


def test_bandwidth_workload_checks_every_round_and_cleans_up() -> None:
    async def body() -> None:
        st = await build(num_adis=16)
        base = st.host.alloc.in_use()
        phases: list[str] = []
        rep = await run_bandwidth(st.host, st.pf, st.iommu, vdevs=4, size=8192, batch=4, rounds=3,
                                  on_phase=phases.append)
        assert phases == ["start", "end"]
        assert rep.vdevs == 4 and rep.queues == 4 + 1 + 1 + 4  # siov-4q AVF, PMD, SVA, siov-4q AVF
        assert rep.errors == [] and rep.mismatches == 0
        assert rep.copies == rep.queues * 4 * 3 and rep.bytes == rep.copies * 8192
        dev = st.iommu._devices[0x0100]
        assert st.host.alloc.in_use() - 4096 * len(dev.pasid_tables) <= base

    run(body())


def test_bandwidth_workload_sees_a_wrong_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is real: a device that corrupts one byte of one COPY's data is counted."""
    hit: list[int] = []
    real_write = IommuSpaces.write

    def corrupting_write(self: IommuSpaces, pasid: int | None, addr: int, data: bytes) -> None:
        if len(data) >= 1024 and not hit:
            hit.append(addr)
            data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        real_write(self, pasid, addr, data)

    monkeypatch.setattr(IommuSpaces, "write", corrupting_write)

    async def body() -> None:
        st = await build(num_adis=16)
        rep = await run_bandwidth(st.host, st.pf, st.iommu, vdevs=1, size=4096, batch=2, rounds=2)
        assert hit and rep.mismatches == 1 and rep.errors == []

    run(body())
