"""Differential test of the two link modes: the same seeded scenario on the accurate link
(cocotbext-pcie SimPort, every hop in Python) and on the fast link (tb/fast: DMA served in C++
through the IOTLB mirror) must leave the same functional results.

Compared: every non-zero page of host RAM (tables, rings, completion records, buffers, A/D
bits), the IOMMU's fault log with PASIDs and its fault-recording registers, the interrupt count
per MSI message, the root complex's request counts, and each VDEV's report (operations, bytes,
interrupts, sends/receives, faults, isolation outcome). Only timing may differ: simulated time,
poll counts and bandwidth figures are left out.

The scenario is the ``make sim`` demo followed by concurrent traffic on four more VDEVs (with a
blocked DMA in one of them); every buffer is allocated before the concurrent phase starts, so
the memory layout does not depend on which link finished first.
"""

from __future__ import annotations

import array
import dataclasses
import hashlib
import json
import logging
import os
import random
import subprocess
import uuid
from pathlib import Path
from typing import Any

import cocotb
import pytest
from cocotb.triggers import Combine

from siov_sim.model.mem import FlatHostMemory
from siov_sim.sw.driver import PfDriver, pci
from siov_sim.sw.driver.regs_adi import RegAdiControl
from siov_sim.sw.guest import UserProcess
from siov_sim.sw.guest.demo import run_demo
from siov_sim.sw.guest.queue import QueueError
from siov_sim.sw.iommu import IommuDriver
from siov_sim.sw.vdcm import Vdcm
from siov_sim.sw.vfio import Vfio
from siov_sim.sw.vfio import uapi as vfio_uapi
from siov_sim.tb.env import Env
from siov_sim.tb.pcie.host_bus import as_host_bus
from siov_sim.tb.pcie.iommu_rc import LOW_RAM_END, IommuRootComplex
from siov_sim.tb.runner import ROOT, build_fast, build_replay, run_rtl

from .test_siov_stack import _open_user_driver

log = logging.getLogger(__name__)
NUM_ADI = 16
SEEDS = [11]
TIMING_FIELDS = {"sim_ns", "wall_s", "polls", "start_ns"}


def _untimed(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k not in TIMING_FIELDS}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


async def _concurrent_phase(bus: Any, iommu: IommuDriver, pf: PfDriver, rng: random.Random) -> dict[str, Any]:
    vfio = Vfio(iommu)
    vdcm = Vdcm(pf, vfio=vfio)
    jobs = []
    for i in range(4):
        v = await vdcm.create("siov-1q", str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        drv, _close = await _open_user_driver(vdcm, vfio, iommu, bus, v.uuid, UserProcess(bus, f"c{i}"), sva=i % 2 == 1)
        bufs = []
        for _ in range(5):
            n = rng.choice([64, 700, 4096, 9000, 20000])
            src, dst = await drv.mem.alloc(n), await drv.mem.alloc(n)
            drv.mem.write(src, rng.randbytes(n))
            bufs.append((src, dst, n))
        jobs.append((drv, bufs))
    bad = jobs[0][1][0]  # VDEV 0 (a PMD) copies from an IOVA nobody mapped: blocked, recorded
    # VDEV 2 (a PMD) also has a page mapped read-only: it reads it, then a COPY writes into it
    pmd = jobs[2][0].mem
    ro = pmd.process.mmap_anon(4096)
    pmd.process.write(ro, rng.randbytes(4096))
    await pmd.container.map_dma(ro, ro, 4096, vfio_uapi.VFIO_DMA_MAP_FLAG_READ)
    jobs[2][1].append((ro, jobs[2][1][0][0], 4096))
    jobs[2][1].append((jobs[2][1][1][0], ro, 2048))

    async def run(k: int) -> list[str]:
        drv, bufs = jobs[k]
        q = drv.queues[0]
        out = []
        for src, dst, n in bufs:
            if k == 0 and (src, dst, n) == bad:
                src = 0x7FFF_0000_0000
            try:
                rec = await q.copy(src, dst, n)
                out.append(f"copy {n}: {rec.status} {rec.bytes_done} ok={drv.mem.read(dst, n) == drv.mem.read(src, n)}")
                # written back where it was read from: a page first cached for reading is now
                # written (the IOMMU walks again: D bit, or a fault on a read-only page)
                rec = await q.copy(dst, src, n)
                out.append(f"back {n}: {rec.status} {rec.bytes_done}")
                await q.fill(dst, 0xA5A5_0000_0000_0000 | k, n)
            except QueueError as exc:
                out.append(f"copy {n}: {exc} state={exc.state} error={exc.error}")
                await q.reset()
        return out

    tasks = [cocotb.start_soon(run(k)) for k in range(len(jobs))]
    await Combine(*tasks)
    return {f"vdev{k}": t.result() for k, t in enumerate(tasks)}


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def link_signature(dut: Any) -> None:
    seed = int(os.environ["SIOV_DIFF_SEED"])
    rc = IommuRootComplex(FlatHostMemory(0, LOW_RAM_END))
    env = Env(dut, rc=rc)
    record = os.environ.get("SIOV_DIFF_RECORD")
    if record and env.link == "fast":
        env.ep.lib.record_start()
    dev = await env.start()
    assert dev is not None
    bus = as_host_bus(rc)
    iommu = IommuDriver(bus)
    pf = PfDriver(bus, int(dev.pcie_id), iommu, RegAdiControl.create)
    await pf.probe()
    demo = await run_demo(bus, pf, iommu, vdevs=4, size=4096, seed=seed)
    concurrent = await _concurrent_phase(bus, iommu, pf, random.Random(seed))
    aer = await _aer_phase(bus, pf)
    assert env.ep.err_msgs == [("ERR_NONFATAL", int(dev.pcie_id))], env.ep.err_msgs
    env.check_link_clean()
    if env.link == "fast":
        env.ep.sync_stats()
    mem = rc.host_mem
    pages = {
        f"{p:x}": hashlib.sha1(mem.read(p << 12, 4096)).hexdigest()
        for lo, hi in rc.ram_windows()
        for p in mem.nonzero_pages(lo, hi)
    }
    sig = {
        "link": env.link,
        "pages": pages,
        "faults": sorted([f.reason, f.sid, f.pasid, f.addr, f.write] for f in rc.faults),
        "fault_log": sorted([f.reason, f.sid, f.pasid, f.addr, f.write, f.recorded] for f in rc.iommu.fault_log),
        "frcd": sorted(rc.iommu.fault_records()),
        "irqs": sorted([a, d, n] for (a, d), n in rc.irq.counts.items()),
        "spurious": rc.irq.spurious_count,
        "rc_stats": dict(rc.stats),
        "demo": _untimed(dataclasses.asdict(demo)),
        "concurrent": concurrent,
        "aer": aer,
        "err_msgs": env.ep.err_msgs,
    }
    out = Path(os.environ["SIOV_DIFF_OUT"])
    out.write_text(json.dumps(sig, indent=1, sort_keys=True))
    if record and env.link == "fast":
        env.ep.lib.record_stop(record)
    log.info(
        "%s link: %d pages, %d faults, %d interrupt messages",
        env.link,
        len(pages),
        len(sig["faults"]),
        sum(n for *_x, n in sig["irqs"]),
    )


async def _aer_phase(bus: Any, pf: PfDriver) -> dict[str, Any]:
    """Error reporting on (DevCtl enables), then with Memory Space off one posted write (UR, dropped:
    ERR_NONFATAL upstream) and one read (UR completion: advisory, ANFE masked: no message); the
    PF driver reads and clears AER. Both links must record the same ERR_* messages."""
    assert await pf.enable_error_reporting()
    bdf = pf.bdf
    cmd = await pci.cfg_read16(bus, bdf, pci.PCI_COMMAND)
    await pci.cfg_write16(bus, bdf, pci.PCI_COMMAND, cmd & ~pci.PCI_COMMAND_MEMORY)
    bar0 = pf.bar(0).addr
    await bus.mmio_write(bar0 + 0x30, (0x5A).to_bytes(4, "little"))
    try:
        await bus.mmio_read(bar0 + 0x30, 4)
        read = "ok"
    except Exception as exc:  # the UR completion: what MemoryTlpRegion.read raises
        read = str(exc)
    await pci.cfg_write16(bus, bdf, pci.PCI_COMMAND, cmd)
    log = await pf.aer_read_clear()
    assert log is not None and log.uncor_status == 1 << 20 and log.first_error == 20, log
    assert (await pf.aer_read_clear()) == dataclasses.replace(log, uncor_status=0, cor_status=0, first_error=None,
                                                               header=None, prefix=None), "not cleared"
    return {"read": read, "log": dataclasses.asdict(log)}


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}/{k}: only in {'fast' if k in b else 'accurate'}")
            else:
                out += _diff(a[k], b[k], f"{path}/{k}")
        return out
    return [] if a == b else [f"{path}: accurate {a!r} != fast {b!r}"]


@pytest.mark.system
@pytest.mark.parametrize("seed", SEEDS)
def test_fast_link_matches_accurate_link(seed: int) -> None:
    print(f"seed {seed}")
    outdir = ROOT / "build" / "diff"
    outdir.mkdir(parents=True, exist_ok=True)
    sigs = {}
    record = outdir / f"fast-{seed}-{os.getpid()}.rec"
    for link in ("accurate", "fast"):
        path = outdir / f"signature-{seed}-{link}-{os.getpid()}.json"
        run_rtl(
            "ep_top",
            test_module=__name__,
            parameters={"NumAdi": NUM_ADI},
            link=link,
            extra_env={"SIOV_DIFF_SEED": str(seed), "SIOV_DIFF_OUT": str(path), "COCOTB_RANDOM_SEED": str(seed),
                       "SIOV_DIFF_RECORD": str(record)},
        )
        sigs[link] = json.loads(path.read_text())
    a, f = sigs["accurate"], sigs["fast"]
    assert a["link"] == "accurate" and f["link"] == "fast"
    assert len(a["pages"]) > 100 and a["faults"] and a["irqs"], "the scenario must touch memory, fault and interrupt"
    diffs = _diff({k: v for k, v in a.items() if k != "link"}, {k: v for k, v in f.items() if k != "link"})
    assert not diffs, f"{len(diffs)} differences between the link modes:\n" + "\n".join(diffs[:40])
    _check_replay(record)


def _replay(exe: Path, record: Path) -> dict[str, Any]:
    r = subprocess.run([str(exe), str(record)], capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode in (0, 1), r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def _check_replay(record: Path) -> None:
    """The no-Python harness of make bench replays the fast run's recording and gets back exactly
    what the RTL sent in the run (the limit figure is the same workload); one changed data word
    in the recording is noticed."""
    exe = build_replay(build_fast({"NumAdi": NUM_ADI}))
    res = _replay(exe, record)
    assert res["same_output_as_recorded"] and res["cycles"] > 10_000 and res["frames_out"] > 1000, res
    words = array.array("I", record.read_bytes())
    i = 2
    while words[i] != 2 or words[i + 1] != 1 or words[i + 5] < 8:  # a REC_FRAME on rx_cpl with data
        i += {1: 4, 2: 10 + words[i + 5], 3: 4}[words[i]]
    words[i + 10 + 3] ^= 0x100  # one bit of a DMA read's data
    bad = record.with_suffix(".bad")
    bad.write_bytes(words.tobytes())
    assert not _replay(exe, bad)["same_output_as_recorded"]
    record.unlink()
    bad.unlink()
