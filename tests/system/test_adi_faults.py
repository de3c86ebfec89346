"""Full chip, fault injection: UR/CA/poisoned completions for one ADI's DMA reads (COPY data,
descriptor fetch or SEND source; injected on the link by PASID + address, or a UR produced by the
IOMMU for an unmapped IOVA) while the other ADIs run under
backpressure and completion reordering. The faulty ADI stops in ERROR with the right reason,
``err_info``/``head`` at the failing descriptor, its IMS error interrupt and the PF's
``last_err``; the others finish with correct data; RESET + ENABLE brings it back."""

from __future__ import annotations

import logging
import random
from typing import Any

import cocotb
import pytest
from cocotbext.pcie.core.tlp import CplStatus

from siov_sim.model.adi import AdiState, Descriptor, ErrorCode, Opcode
from siov_sim.tb.pcie.ep_device import CplFault
from siov_sim.tb.runner import run_rtl
from tests.system.adi_sys import DATA_HI, DATA_LO, AdiSystem, fill_sources, random_desc

log = logging.getLogger(f"cocotb.{__name__}")

CODE = {CplStatus.UR: ErrorCode.CPL_UR, CplStatus.CA: ErrorCode.CPL_CA, "poisoned": ErrorCode.CPL_POISONED}


async def _fault(dut: Any, status: CplStatus | str, where: str) -> None:
    s = AdiSystem(dut)
    await s.start()
    s.ep.set_backpressure(random.Random(s.rng.getrandbits(64)))
    s.ep.set_cpl_reorder(random.Random(s.rng.getrandbits(64)))
    n = 4 if s.num_adi <= 4 else 8
    chosen = sorted(s.rng.sample(range(s.num_adi), n))
    for a in chosen:
        await s.add_adi(a, ring_log2=4, data_pages=4)
        fill_sources(s, a)
    victim = s.rng.choice(chosen)
    v = s.adis[victim]
    half = v.data_size // 2
    # the victim: good descriptors, then the one that faults, then more that must never run
    bad_at = s.rng.randint(1, 4)
    descs = [random_desc(s, victim) for _ in range(bad_at)]
    if where == "desc":  # the descriptor fetch itself fails: record with opcode 0
        lo = v.ring + 32 * bad_at
        hi = lo + 32
        descs.append(Descriptor(Opcode.COPY, 64, v.data, v.data + half, 0x1234))
    elif where == "iommu":  # COPY source outside the victim's mapping: the IOMMU answers UR
        lo, hi = v.iova + v.size + 0x10_0000, v.iova + v.size + 0x11_0000
        descs.append(Descriptor(Opcode.COPY, 3000, lo + 0x100, v.data + half, 0x1234))
    elif where == "send":  # the SEND's source read fails: nothing reaches the receiver
        lo = v.data + half + 0x100
        hi = lo + 0x40
        peer = s.rng.choice([a for a in chosen if a != victim])
        descs.append(Descriptor(Opcode.SEND, 300, lo - 0x80, peer, 0x1234))
    else:  # fault on the second 4 KiB chunk of a COPY (bytes = one chunk done); random
        # descriptors read only the first half of the data area, this one reads the second
        lo = v.data + half + 0x1000
        hi = lo + 0x200
        descs.append(Descriptor(Opcode.COPY, 6000, v.data + half, v.data, 0x1234))
    descs += [random_desc(s, victim) for _ in range(3)]
    if where == "iommu":
        assert status == CplStatus.UR
    elif status == "poisoned":
        s.ep.add_cpl_fault(CplFault(poison=True, pasid=v.pasid, addr_lo=lo, addr_hi=hi))
        s.model.spaces.add_read_fault(v.pasid, lo, hi, int(CODE[status]))
    else:
        s.ep.add_cpl_fault(CplFault(status=status, pasid=v.pasid, addr_lo=lo, addr_hi=hi))
        s.model.spaces.add_read_fault(v.pasid, lo, hi, int(CODE[status]))
    others = [a for a in chosen if a != victim]
    for a in others:
        await s.submit(a, [random_desc(s, a) for _ in range(5)])
    await s.submit(victim, descs)
    for a in others:  # more traffic on the others while the victim is in ERROR
        await s.submit(a, [random_desc(s, a) for _ in range(4)])
    exp = s.model.model.adis[victim].dyn
    assert exp.state == AdiState.ERROR and exp.err == CODE[status] and exp.err_info == bad_at
    await s.check()
    assert await s.pf_last_err() == (victim, int(CODE[status]))
    for a in others:
        assert s.model.model.adis[a].dyn.state == AdiState.ENABLED
    if where == "iommu":
        faults = await s.iommu.drain_faults()
        assert faults and {f.pasid for f in faults} == {v.pasid}, faults
    elif status == "poisoned":
        assert s.ep.cpl_faults[0].hits > 0
    else:
        assert s.ep.cpls_injected > 0
    # recovery: remove the fault, reset, enable, run again
    s.ep.clear_cpl_faults()
    s.model.spaces.clear_read_faults()
    await s.reset(victim)
    assert await s.enable(victim)
    await s.submit(victim, [random_desc(s, victim) for _ in range(5)])
    for a in others:
        await s.submit(a, [random_desc(s, a) for _ in range(2)])
    await s.check()
    assert s.model.model.adis[victim].dyn.state == AdiState.ENABLED
    log.info("victim ADI %d (PASID %d) outcomes %s", victim, v.pasid, dict(s.model.outcomes))
    assert DATA_LO <= v.hpa < DATA_HI


@cocotb.test(timeout_time=200, timeout_unit="ms")
@cocotb.parametrize(status=[CplStatus.UR, CplStatus.CA], where=["data", "desc", "send"])
async def cpl_fault_stops_one_adi(dut: Any, status: CplStatus, where: str) -> None:
    await _fault(dut, status, where)


@cocotb.test(timeout_time=200, timeout_unit="ms")
@cocotb.parametrize(where=["data", "desc"])
async def poisoned_completion_stops_one_adi(dut: Any, where: str) -> None:
    await _fault(dut, "poisoned", where)


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def iommu_fault_stops_one_adi(dut: Any) -> None:
    await _fault(dut, CplStatus.UR, "iommu")


@pytest.mark.system
@pytest.mark.parametrize("num_adi", [4, 1024])
def test_adi_faults(num_adi: int) -> None:
    run_rtl("ep_top", test_module=__name__, parameters={"NumAdi": num_adi})
