"""Full chip: random COPY/FILL/SEND mixes across many ADIs, each with a random PASID bound to its
own second-stage IOMMU domain, checked against the golden model (tb/scoreboard.py); variants
with random backpressure on all five streams and reordered DMA-read completions."""

from __future__ import annotations

import logging
import random
from collections import Counter
from typing import Any

import cocotb
import pytest

from siov_sim.model.pcie.prefix import find_pasid
from siov_sim.tb.runner import run_rtl
from tests.system.adi_sys import AdiSystem, fill_sources, random_desc

log = logging.getLogger(f"cocotb.{__name__}")


async def traffic(dut: Any, *, n_adis: int, rounds: int, per_round: int, stress: bool) -> None:
    s = AdiSystem(dut)
    await s.start()
    if stress:
        s.ep.set_backpressure(random.Random(s.rng.getrandbits(64)))
        s.ep.set_cpl_reorder(random.Random(s.rng.getrandbits(64)), window=8, hold_cycles=48)
        s.rc.split_on_all_rcb = True  # many split completions per MRd
        await s.set_mps_mrrs(s.rng.randint(0, 2), s.rng.randint(0, 5))
    chosen = sorted(s.rng.sample(range(s.num_adi), n_adis))
    if s.num_adi - 1 not in chosen:
        chosen[-1] = s.num_adi - 1  # the last ADI (top portal page / config page) always takes part
    for k, a in enumerate(chosen):  # the first two share their IOVAs: only the PASID tells them apart
        await s.add_adi(a, ring_log2=s.rng.choice([3, 4, 5]), data_pages=4, iova=0x2_0000_0000 if k < 2 else None,
                        pmr=s.rng.random() < 0.3)
        fill_sources(s, a)
    assert s.adis[chosen[0]].iova == s.adis[chosen[1]].iova != 0
    # every DMA request carries the prefix of a configured ADI (PASID + PMR); only interrupt
    # messages go without one
    pmr_of = {c.pasid: c.pmr for c in s.adis.values()}
    bad: list[str] = []
    tagged: Counter[int] = Counter()

    def tap(f: Any, stream: str) -> bool:
        if stream == "tx_cpl_tlp":
            return False
        p = find_pasid([f.prfx]) if f.prfx else None
        if p is None:
            if not (stream == "tx_wr_req_tlp" and f.header_dws == 3 and (f.hdr >> 52) & 0xFFF == 0xFEE):
                bad.append(f"{stream} without PASID: hdr 0x{f.hdr:032x}")
        elif p.pasid not in pmr_of or p.pmr != pmr_of[p.pasid] or p.er:
            bad.append(f"{stream} with prefix 0x{f.prfx:08x}")
        else:
            tagged[p.pasid] += 1
        return False

    s.ep.tap = tap
    log.info("ADIs %s, PASIDs %s, PMR %s", chosen, [s.adis[a].pasid for a in chosen], [s.adis[a].pmr for a in chosen])
    for r in range(rounds):
        receivers = chosen[:]
        s.rng.shuffle(receivers)  # one sender per receiver per round: deterministic slot order
        for a, peer in zip(chosen, receivers, strict=True):
            ctx = s.adis[a]
            k = min(per_round, ctx.ring_size - 1)
            descs = [random_desc(s, a, send_to=peer if s.rng.random() < 0.25 else None) for _ in range(k)]
            if s.rng.random() < 0.5:
                await s.submit(a, descs)
            else:  # several doorbells for one batch
                for d in descs:
                    await s.submit(a, [d])
        await s.check()
        for a in chosen:  # receivers consume some of their packets (rx head through the portal)
            if s.rng.random() < 0.6:
                await s.rx_doorbell(a, s.model.model.adis[a].dyn.rx_tail)
        log.info("round %d: %d records checked, link TLPs down %d up %d, %d cpls reordered", r,
                 s.model.ops_checked, s.ep.tlps_down, s.ep.tlps_up, s.ep.cpls_reordered)
    assert not bad, bad[:5]
    assert set(tagged) == set(pmr_of), "an ADI issued no PASID-tagged request"
    out = s.model.outcomes
    log.info("outcomes %s", dict(out))
    assert sum(n for (op, err), n in out.items() if err == "none") >= rounds * len(chosen), out
    assert {"COPY", "FILL", "SEND"} <= {op for op, _ in out}, out
    if stress:
        assert s.ep.cpls_reordered > 0, "reordering never happened"
    assert s.rc.stats["rd_fault"] == 0 and s.rc.stats["wr_fault"] == 0


@cocotb.test(timeout_time=500, timeout_unit="ms")
@cocotb.parametrize(stress=[False, True])
async def random_mix_many_adis(dut: Any, stress: bool) -> None:
    many = int(dut.NumAdi.value) > 4
    await traffic(dut, n_adis=24 if many else 4, rounds=4 if many else 6, per_round=5, stress=stress)


@pytest.mark.system
@pytest.mark.parametrize("num_adi", [4, 1024])
def test_adi_traffic(num_adi: int) -> None:
    run_rtl("ep_top", test_module=__name__, parameters={"NumAdi": num_adi})
