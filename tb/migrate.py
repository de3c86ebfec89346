"""`make migrate`: live migration of a VM with a SIOV VDEV between two simulated hosts, on the RTL.

``python -m siov_sim.tb.migrate [--migrations N] [--seed S] [--ram KIB] [--size BYTES]`` builds
``tb/mig/ep_mig_top.sv`` (two unmodified ``ep_top`` endpoints) once and runs :func:`migrate_demo`:

* two hosts, each with its own cocotbext-pcie root complex, VT-d IOMMU model (``IommuRootComplex``),
  host memory, RTL endpoint (accurate link) and software stack (IOMMU driver, PF driver, VFIO,
  VDCM) -- nothing is shared but the simulator's clock;
* a VM on host A with an AVF-like driver on a 4-queue VDEV runs checked COPY/FILL traffic on every
  queue (``sw/vmm/workload.py``) while the VMM migrates it A -> B -> A ... at random points
  (``sw/vmm/migrate.py``: pre-copy with IOMMU dirty tracking, stop-and-copy through VFIO
  migration v2, the VDCM's device-state stream, resume on the other host);
* the report (rounds, pages per round, device-state bytes, downtime in simulated us,
  descriptors before/after, bytes checked, interrupts on each host) is printed and written to
  ``build/migrate/report.txt`` / ``report.json``.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import cocotb

log = logging.getLogger("siov_sim.migrate")
OUT = Path(os.environ.get("SIOV_MIGRATE_OUT", "build/migrate"))
TOP = "ep_mig_top"
TOP_SV = Path(__file__).resolve().parent / "mig" / "ep_mig_top.sv"


class _Side:
    """One endpoint of ep_mig_top seen as an ep_top: ``x`` is ``<side>_x`` (clk and rst shared)."""

    def __init__(self, dut: Any, side: str) -> None:
        self._dut, self._side = dut, side

    def __getattr__(self, name: str) -> Any:
        if name in ("clk", "rst"):
            return getattr(self._dut, name)
        return getattr(self._dut, f"{self._side}_{name}")


@dataclass
class Report:
    options: dict[str, Any] = field(default_factory=dict)
    migrations: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    aborts: list[dict[str, Any]] = field(default_factory=list)

    def text(self) -> str:
        s = self.summary
        lines = ["siov-sim live migration report", "==============================",
                 f"two hosts (A, B): own root complex, VT-d IOMMU, host memory and RTL endpoint each "
                 f"({s.get('link')} link); VM with a {s.get('type')} VDEV, {s.get('ram_kib')} KiB guest RAM",
                 "",
                 "  #  from->to  rounds  pages per round             state B  downtime us  descs before/after  "
                 "IMS irqs on dest"]
        for m in self.migrations:
            pages = str(m["pages_per_round"])
            lines.append(f"{m['n']:3d}  {m['src']} -> {m['dst']}   {m['rounds']:5d}  {pages:<26}  "
                         f"{m['state_bytes']:6d}  {m['downtime_us']:10.2f}  "
                         f"{m['descs_before']:8d}/{m['descs_after']:<8d}  {m['irqs_on_dst']}")
        lines += [
            "",
            f"migrations: {s.get('migrations')} ({s.get('failed', 0)} failed); {s.get('aborted', 0)} more cancelled "
            "half-way (pre-copy or stop-and-copy), the guest running on at the source each time",
            f"downtime: min {s.get('downtime_us_min')} us, median {s.get('downtime_us_median')} us, "
            f"max {s.get('downtime_us_max')} us (simulated); median split: stop + save "
            f"{s.get('stop_us_median')} us, last pages + state over the link {s.get('copy_us_median')} us, "
            f"load + resume {s.get('resume_us_median')} us",
            f"device state per VDEV: {s.get('state_bytes')} bytes ({s.get('queues')} ADIs)",
            f"pre-copy: round 0 {s.get('round0_pages')} pages, then median {s.get('later_rounds_median')} pages",
            f"descriptors: {s.get('posted')} posted, {s.get('completed')} completed with every record checked, "
            f"device counter {s.get('device_completed')}; {s.get('bytes_checked')} bytes checked",
            f"IMS interrupts: {s.get('irqs')} delivered to the guest, on every destination: {s.get('irqs_every_dst')}",
            f"guest RAM compared between the hosts at every switch-over: {s.get('ram_checked')}",
            f"isolation on the last destination (a DMA outside the VM's mappings faults with its PASID): "
            f"{s.get('isolation')}",
            f"left over: {s.get('left_over')}",
            f"simulated time {s.get('sim_us')} us, wall time {s.get('wall_s')} s",
        ]
        return "\n".join(lines) + "\n"


def _find_endpoint(rc: Any) -> Any:
    def walk(bus: Any) -> Any:
        for d in bus.devices:
            if d.header_type == 0:
                return d
            if d.subordinate is not None and (found := walk(d.subordinate)) is not None:
                return found
        return None

    found = walk(rc.host_bridge.bus)
    if found is None:
        raise RuntimeError("enumeration found no endpoint function")
    return found


@cocotb.test()
async def migrate_demo(dut: Any) -> None:
    from statistics import median

    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge, Timer
    from cocotb.utils import get_sim_time

    from siov_sim.model.mem import FlatHostMemory
    from siov_sim.sw.driver import PfDriver
    from siov_sim.sw.driver.abi import AdiState
    from siov_sim.sw.driver.regs_adi import RegAdiControl
    from siov_sim.sw.guest.queue import QueueError
    from siov_sim.sw.iommu import IommuDriver
    from siov_sim.sw.vdcm import Vdcm
    from siov_sim.sw.vfio import Vfio
    from siov_sim.sw.vmm import CheckedTraffic, Host, MigrationError, migrate, start_guest, stop_guest
    from siov_sim.tb.coverage import sample_migration
    from siov_sim.tb.pcie.ep_device import EpDevice
    from siov_sim.tb.pcie.host_bus import as_host_bus
    from siov_sim.tb.pcie.iommu_rc import LOW_RAM_END, IommuRootComplex

    t0 = time.monotonic()
    opts = json.loads(os.environ.get("SIOV_MIGRATE_OPTS", "{}"))
    rng = Random(int(opts.get("seed", 1)))
    rep = Report(options=opts)
    logging.getLogger("cocotb.pcie").setLevel(logging.ERROR)  # enumeration probes empty slots: noise
    Clock(dut.clk, 4, unit="ns").start()
    rcs, eps = [], []
    for side in "ab":
        rc = IommuRootComplex(FlatHostMemory(0, LOW_RAM_END))
        rc.max_payload_size = rc.max_read_request_size = 2
        ep = EpDevice(_Side(dut, side), dut.clk)
        ep.upstream_port.max_link_speed, ep.upstream_port.max_link_width = 3, 16
        rc.make_port().connect(ep)
        rcs.append(rc)
        eps.append(ep)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    hosts = []
    for name, rc in zip("AB", rcs, strict=True):
        await rc.enumerate()
        dev = _find_endpoint(rc)
        bus = as_host_bus(rc)
        iommu = IommuDriver(bus)
        pf = PfDriver(bus, int(dev.pcie_id), iommu, RegAdiControl.create)
        await pf.probe()
        hosts.append(Host(name, bus, pf, Vdcm(pf, vfio=Vfio(iommu))))
        log.warning("host %s: endpoint %s probed, %d ADIs", name, dev.pcie_id, pf.num_adis)

    type_id = str(opts.get("type", "siov-4q"))
    g = await start_guest(hosts[0], "vm0", type_id, ram_size=int(opts.get("ram_kib", 256)) << 10)
    traffic = CheckedTraffic(g, rng, max_len=int(opts.get("size", 256)), think_ns=(1_000, 4_000))
    await traffic.setup()
    tasks = [cocotb.start_soon(traffic.run(q)) for q in range(len(g.driver.queues))]
    n_mig = int(opts.get("migrations", 6))
    abort_rate = float(opts.get("abort_rate", 0.1))
    gap_ns = tuple(opts.get("gap_ns", (2_000, 10_000)))  # guest traffic between two migrations
    failed = aborted = 0
    irqs_every_dst = True
    for i in range(n_mig):
        await Timer(rng.randrange(*gap_ns), "ns")  # a random point in the guest's traffic
        before = traffic.stats.completed
        dst = hosts[1] if g.at.host is hosts[0] else hosts[0]
        if rng.random() < abort_rate:  # cancelled half-way: the guest must run on where it was
            where = rng.choice(["precopy", "stopcopy"])
            src_name = g.at.host.name
            try:
                await migrate(g, dst, abort_at=where, link_gbps=float(opts.get("gbps", 10)))
            except MigrationError as exc:
                assert exc.errno == errno.ECANCELED and g.at.host.name == src_name, exc
                aborted += 1
                sample_migration(f"cancelled_{where}")
                rep.aborts.append({"n": i, "at": where, "host": src_name, "descs": traffic.stats.completed})
            await Timer(rng.randrange(1_000, 5_000), "ns")
        try:
            st = await migrate(g, dst, threshold_pages=rng.choice([0, 2, 8]), link_gbps=float(opts.get("gbps", 10)))
        except MigrationError as exc:
            failed += 1
            log.error("migration %d failed: %s", i, exc)
            continue
        sample_migration("migrated")
        src_host = hosts[0] if dst is hosts[1] else hosts[1]
        # the source let go of its PASID (unbound with invalidation) and its ADIs; the destination's
        # ADIs carry the destination's PASID
        assert st.src_pasid not in src_host.pf.iommu.bound(src_host.pf.sid), "source PASID still bound"
        assert src_host.vdcm.usage().adis_in_use == 0
        for a in g.at.vdev.adis:  # running on the destination, under the destination's PASID
            adi_state = (await dst.pf.adi.status(a)).state
            assert adi_state is AdiState.ENABLED, adi_state
        assert dst.pf.iommu.bound(dst.pf.sid).get(st.dst_pasid) is g.at.container.domain
        irq0 = sum(g.at.vdev.irq_counts)
        done0 = traffic.stats.completed
        while traffic.stats.completed < done0 + 4 and not traffic.stats.errors:  # traffic on the new host
            await Timer(1_000, "ns")
        irqs = sum(g.at.vdev.irq_counts) - irq0
        irqs_every_dst &= irqs > 0
        rep.migrations.append({"n": i, "src": st.src, "dst": st.dst, "rounds": st.rounds,
                               "pages_per_round": st.pages_per_round, "state_bytes": st.state_bytes,
                               "downtime_us": round(st.downtime_ns / 1000, 3),
                               "stop_us": round(st.stop_ns / 1000, 3), "copy_us": round(st.copy_ns / 1000, 3),
                               "resume_us": round(st.resume_ns / 1000, 3),
                               "total_us": round(st.total_ns / 1000, 3), "src_pasid": st.src_pasid,
                               "dst_pasid": st.dst_pasid, "src_adis": st.src_adis, "dst_adis": st.dst_adis,
                               "descs_before": before, "descs_after": traffic.stats.completed,
                               "irqs_on_dst": irqs, "ram_checked": st.ram_checked})
        log.warning("migration %d: %s -> %s, %d rounds %s, %d B state, downtime %.2f us", i, st.src, st.dst,
                    st.rounds, st.pages_per_round, st.state_bytes, st.downtime_ns / 1000)
        if traffic.stats.errors:
            break
    traffic.stop = True
    for task in tasks:
        await task
    device_completed = await traffic.device_completed()
    # isolation on the last destination: a DMA outside the VM's mappings faults there, with the
    # destination's PASID, and lands nowhere
    here = g.at.host
    rc_here = rcs[hosts.index(here)]
    rc_here.iommu.fault_log.clear()
    q0 = g.driver.queues[0]
    probe_dst = await g.driver.mem.alloc(4096)
    try:
        await q0.copy(g.vm.ram_size + 0x10_0000, probe_dst, 64)  # source GPA outside guest RAM
        isolation = False
    except QueueError:
        isolation = bool(rc_here.iommu.fault_log) and all(
            f.pasid == g.at.vdev.pasid for f in rc_here.iommu.fault_log
        ) and g.vm.read(probe_dst, 64) == bytes(64)
    await q0.reset()  # the guest recovers its queue (slow path: CTRL reset + enable)
    queues, irqs_total = len(g.driver.queues), traffic.irqs()
    await stop_guest(g)
    left = {h.name: asdict(h.vdcm.usage()) for h in hosts}
    downs = [m["downtime_us"] for m in rep.migrations]
    later = [p for m in rep.migrations for p in m["pages_per_round"][1:]]
    rep.summary = {
        "link": "accurate", "type": type_id, "queues": queues, "ram_kib": g.vm.ram_size >> 10,
        "migrations": len(rep.migrations), "failed": failed, "aborted": aborted,
        "downtime_us_min": min(downs, default=0), "downtime_us_median": round(median(downs), 3) if downs else 0,
        "downtime_us_max": max(downs, default=0),
        **{f"{k}_median": round(median(m[k] for m in rep.migrations), 3) if rep.migrations else 0
           for k in ("stop_us", "copy_us", "resume_us")},
        "state_bytes": rep.migrations[0]["state_bytes"] if rep.migrations else 0,
        "round0_pages": rep.migrations[0]["pages_per_round"][0] if rep.migrations else 0,
        "later_rounds_median": median(later) if later else 0,
        "posted": traffic.stats.posted, "completed": traffic.stats.completed, "device_completed": device_completed,
        "bytes_checked": traffic.stats.bytes_checked, "irqs": irqs_total, "irqs_every_dst": irqs_every_dst,
        "ram_checked": all(m["ram_checked"] for m in rep.migrations), "errors": traffic.stats.errors,
        "left_over": left, "sim_us": round(get_sim_time("ns") / 1000, 3), "wall_s": round(time.monotonic() - t0, 2),
        "protocol_errors": sum(len(ep.protocol_errors) for ep in eps), "isolation": isolation,
    }  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(asdict(rep), indent=2, default=str) + "\n")
    (OUT / "report.txt").write_text(rep.text())
    assert not traffic.stats.errors, traffic.stats.errors
    assert not failed and len(rep.migrations) == n_mig
    assert traffic.stats.completed == traffic.stats.posted == device_completed, "a descriptor was lost or repeated"
    assert irqs_every_dst, "a destination delivered no IMS interrupt"
    assert all(not any(v.values()) for v in left.values()), f"resources left over: {left}"
    assert rep.summary["protocol_errors"] == 0
    assert isolation, "a DMA outside the VM's mappings was not blocked on the destination with its PASID"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--migrations", type=int, default=6, help="migrations, alternating A -> B -> A ...")
    ap.add_argument("--seed", type=int, default=1, help="seed of the traffic and the migration points")
    ap.add_argument("--ram", type=int, default=256, help="guest RAM in KiB (>= 128, multiple of 4)")
    ap.add_argument("--size", type=int, default=256, help="largest COPY/FILL of the guest traffic, bytes")
    ap.add_argument("--gbps", type=float, default=10.0, help="bandwidth of the migration link between the hosts")
    ap.add_argument("--num-adi", type=int, default=8, help="ep_top NumAdi of each endpoint")
    ap.add_argument("--type", default="siov-4q", choices=("siov-1q", "siov-4q"), help="mdev type of the VM's VDEV")
    ap.add_argument("--abort-rate", type=float, default=0.1,
                    help="share of migrations first cancelled half-way (then done)")
    ap.add_argument("--out", default=os.environ.get("SIOV_MIGRATE_OUT", "build/migrate"))
    args = ap.parse_args()
    errs = []
    if args.migrations < 1:
        errs.append(f"MIGRATIONS={args.migrations}: at least 1")
    if args.ram < 128 or args.ram % 4 or args.ram > 1 << 20:
        errs.append(f"RAM={args.ram}: guest RAM in KiB, a multiple of 4 from 128 to 1048576")
    if not 1 <= args.size <= 1024:
        errs.append(f"SIZE={args.size}: 1 .. 1024 bytes per transfer")
    if not (4 <= args.num_adi <= 4096 and args.num_adi & (args.num_adi - 1) == 0):
        errs.append(f"NUM_ADI={args.num_adi}: a power of two from 4 to 4096")
    if args.gbps <= 0:
        errs.append(f"GBPS={args.gbps}: must be positive")
    for e in errs:
        sys.stderr.write(f"make migrate: {e}\n")
    if errs:
        return 2
    logging.basicConfig(level=logging.WARNING)
    from siov_sim.tb.runner import ROOT, run_rtl

    out = (ROOT / args.out).resolve()
    env = {"SIOV_MIGRATE_OPTS": json.dumps({"migrations": args.migrations, "seed": args.seed, "ram_kib": args.ram,
                                            "size": args.size, "gbps": args.gbps, "type": args.type,
                                            "abort_rate": args.abort_rate}),
           "SIOV_MIGRATE_OUT": str(out), "COCOTB_RANDOM_SEED": str(args.seed)}
    t0 = time.monotonic()
    print(f"siov-sim: live migration demo, seed {args.seed}", flush=True)
    run_rtl(TOP, test_module="siov_sim.tb.migrate", testcase="migrate_demo", parameters={"NumAdi": args.num_adi},
            extra_sources=[TOP_SV], extra_env=env, test_dir=out)
    sys.stdout.write("\n" + (out / "report.txt").read_text())
    sys.stdout.write(f"(report: {out / 'report.txt'}, {out / 'report.json'}; wall incl. build "
                     f"{time.monotonic() - t0:.1f} s)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
