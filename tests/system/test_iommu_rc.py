"""IOMMU root complex under cocotb: a pure-Python endpoint DMAs (with and without PASID) through
the VT-d model programmed by the host IOMMU driver over RcHostBus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cocotb
import pytest
from cocotb.triggers import Timer
from cocotbext.pcie.core import Device, MemoryEndpoint
from cocotbext.pcie.core.tlp import CplStatus, Tlp, TlpType

from siov_sim.model.mem import HostMemory
from siov_sim.sw.bus import MsiMessage, mmio_read64
from siov_sim.sw.iommu import DomainKind, IommuDriver
from siov_sim.tb.pcie.host_bus import RcHostBus
from siov_sim.tb.pcie.iommu_rc import IOMMU_BASE, IommuRootComplex
from siov_sim.tb.pcie.pasid_tlp import PasidTlp, install
from siov_sim.tb.runner import run_rtl


class Bench:
    def __init__(self) -> None:
        install()
        self.rc = IommuRootComplex(HostMemory(0, 0x8000_0000))
        self.rc.max_payload_size = 2
        self.ep = MemoryEndpoint()
        self.ep.vendor_id, self.ep.device_id = 0x8086, 0x0D5E
        self.ep.add_mem_region(4096)
        self.dev = Device(self.ep)
        self.rc.make_port().connect(self.dev)
        self.bus = RcHostBus(self.rc)
        self.drv = IommuDriver(self.bus)

    async def start(self) -> None:
        await self.rc.enumerate()
        self.ep.bus_master_enable = True
        await self.drv.bring_up()

    @property
    def sid(self) -> int:
        return int(self.ep.pcie_id)

    def _req(self, write: bool, addr: int, pasid: int | None, data: bytes = b"", n: int = 0) -> PasidTlp:
        t = PasidTlp()
        t.fmt_type = TlpType.MEM_WRITE_64 if write else TlpType.MEM_READ_64
        t.requester_id = self.ep.pcie_id
        t.address = addr
        if write:
            t.set_data(bytearray(data))
            t.first_be = 0xF
            t.last_be = 0xF if len(data) > 4 else 0
        else:
            t.length = n // 4
            t.first_be = 0xF
            t.last_be = 0xF if n > 4 else 0
        if pasid is not None:
            t.set_pasid(pasid)
        return t

    async def dma_write(self, addr: int, data: bytes, pasid: int | None = None) -> None:
        await self.ep.send(self._req(True, addr, pasid, data))
        await Timer(200, unit="ns")

    async def dma_read(self, addr: int, n: int, pasid: int | None = None) -> tuple[int, bytes]:
        cpls: list[Any] = await self.ep.perform_nonposted_operation(self._req(False, addr, pasid, n=n))
        data = b"".join(bytes(c.get_data()) for c in cpls if c.status == CplStatus.SC)
        return int(cpls[-1].status), data


@cocotb.test()
async def translated_dma_and_faults(dut: Any) -> None:
    b = Bench()
    await b.start()
    drv, mem, sid = b.drv, b.rc.host_mem, b.sid
    cap = await mmio_read64(b.bus, IOMMU_BASE + 0x8)
    assert cap == b.rc.iommu.caps.cap_value
    ids = await b.bus.cfg_read(sid, 0, 4)
    assert int.from_bytes(ids, "little") == 0x0D5E_8086
    fs = drv.alloc_domain(DomainKind.FIRST_STAGE)
    ss = drv.alloc_domain(DomainKind.SECOND_STAGE)
    buf = b.bus.alloc.alloc(0x4000)
    fs.map(0x7F00_0000_0000, buf, 0x2000)
    ss.map(0x1_0000_0000, buf + 0x2000, 0x2000)
    await drv.bind_pasid(sid, 0x42, fs)
    await drv.attach_device(sid, ss)

    # PASID-tagged DMA write + read through the first-stage table
    await b.dma_write(0x7F00_0000_1010, b"pasid-fs-data!!!", pasid=0x42)
    assert mem.read(buf + 0x1010, 16) == b"pasid-fs-data!!!"
    st, data = await b.dma_read(0x7F00_0000_1010, 16, pasid=0x42)
    assert st == CplStatus.SC and data == b"pasid-fs-data!!!"
    # request without PASID: RID_PASID -> second stage
    await b.dma_write(0x1_0000_0FF0, bytes(range(16)))
    assert mem.read(buf + 0x2FF0, 16) == bytes(range(16))
    st, data = await b.dma_read(0x1_0000_0000, 512)
    assert st == CplStatus.SC and len(data) == 512

    # faulting read -> UR completion, fault recorded + fault event interrupt
    st, _ = await b.dma_read(0x7F00_0000_1000, 8, pasid=0x43)
    assert st == CplStatus.UR
    assert drv.fault_irqs == 1
    # faulting write -> dropped, recorded
    before = mem.read(buf, 16)
    await b.dma_write(0x7F00_0000_3000, b"x" * 16, pasid=0x42)  # unmapped page
    assert mem.read(buf, 16) == before
    recs = await drv.drain_faults()
    assert [(r.sid, r.pasid, r.reason, r.write) for r in recs] == [(sid, 0x43, 0x59, False), (sid, 0x42, 0x71, True)]
    assert b.rc.stats["rd_fault"] == 1 and b.rc.stats["wr_fault"] == 1

    # CA instead of UR when configured
    b.rc.fault_read_status = CplStatus.CA
    st, _ = await b.dma_read(0x7F00_0000_1000, 8, pasid=0x44)
    assert st == CplStatus.CA

    # unmap -> the IOMMU really stops translating (driver invalidated)
    await fs.unmap(0x7F00_0000_0000, 0x2000)
    st, _ = await b.dma_read(0x7F00_0000_1010, 16, pasid=0x42)
    assert st == CplStatus.CA
    await drv.drain_faults()


@cocotb.test()
async def interrupts_are_not_translated(dut: Any) -> None:
    b = Bench()
    await b.start()
    got: list[MsiMessage] = []
    msg = b.bus.alloc_irq(got.append)
    await b.drv.attach_device(b.sid, b.drv.alloc_domain(DomainKind.SECOND_STAGE))  # nothing mapped
    snapshot = b.rc.host_mem.read(msg.addr & 0x7FFF_FFFF, 4)
    await b.dma_write(msg.addr, msg.data.to_bytes(4, "little"))  # MSI: DWORD write, no PASID
    assert got == [msg]
    assert b.rc.stats["msi"] == 1 and b.rc.iommu.fault_log == []
    assert b.rc.host_mem.read(msg.addr & 0x7FFF_FFFF, 4) == snapshot
    await b.dma_write(msg.addr + 0x10, (0x99).to_bytes(4, "little"))  # unknown vector: spurious
    assert b.rc.irq.spurious_count == 1
    # a PASID-tagged write to the interrupt range is DMA: translated (and here it faults)
    await b.dma_write(msg.addr, msg.data.to_bytes(4, "little"), pasid=7)
    assert len(got) == 1 and b.rc.stats["wr_fault"] == 1
    # a non-DWORD write to the range is malformed, dropped
    await b.dma_write(msg.addr, bytes(8))
    assert b.rc.stats["intr_malformed"] == 1 and len(got) == 1
    st, _ = await b.dma_read(msg.addr, 4)  # reads of the interrupt range without PASID: blocked
    assert st == CplStatus.UR
    assert [f.reason for f in b.rc.faults] == [0x59, 0x29, 0x29]  # PASID 7 not bound, then 2x 0x29


@cocotb.test()
async def ats_requests_blocked(dut: Any) -> None:
    b = Bench()
    await b.start()
    t = b._req(False, 0x1000, None, n=4)
    t.at = 2  # translated request
    cpls = await b.ep.perform_nonposted_operation(t)
    assert cpls[-1].status == CplStatus.UR and b.rc.stats["ats_blocked"] == 1
    assert isinstance(cpls[-1], Tlp)


@pytest.mark.system
def test_iommu_rc() -> None:
    # the bench is pure Python; -Wno-fatal keeps lint warnings in unrelated RTL (the runner compiles
    # the whole file list) from blocking it
    run_rtl(
        "tb_clk_only",
        test_module=__name__,
        extra_sources=[Path(__file__).with_name("tb_clk_only.sv")],
        build_args=["-Wno-fatal"],
    )
