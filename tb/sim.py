"""`make sim`: bring the SIOV endpoint up through the real RTL and report what happened.

``python -m siov_sim.tb.sim [--vdevs N] [--size BYTES] [--seed S]`` builds ep_top in Verilator
(once), runs the cocotb test :func:`siov_demo` in it and prints the report it wrote to
``build/sim/report.txt`` / ``report.json``. ``WAVES=1`` adds an FST waveform.

What it does (the host side is the real software in ``sw/``, the device is the real RTL):
1. cocotbext-pcie's root complex (with the VT-d scalable-mode IOMMU model in its upstream path)
   enumerates the endpoint through the RTL config space;
2. the PF driver probes it: finds the Intel SIOV DVSEC (vendor 0x8086, ID 5) and the PASID
   capability, enables PASID, sets the system page size, brings the IOMMU up the way Linux does,
   sets up PF MSI-X;
3. ``sw/guest/demo.py::run_demo``: VFIO + VDCM compose VDEVs of several types, AVF-like guest,
   DPDK-like PMD and SVA drivers run COPY/FILL/SEND through their mapped portal pages, an isolation
   breach is blocked by the IOMMU and recovered, VDEVs are removed in teardown order;
4. the report (per-VDEV bytes, operations, interrupts, faults, simulated bandwidth, wall time).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import cocotb
from cocotb.utils import get_sim_time

from siov_sim.model.pcie.cfgspace import ConfigSpace
from siov_sim.tb.cfgdump import read_config_space

log = logging.getLogger("siov_sim.sim")
OUT = Path(os.environ.get("SIOV_SIM_OUT", "build/sim"))


@dataclass
class Report:
    options: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    link: dict[str, Any] = field(default_factory=dict)
    demo: dict[str, Any] = field(default_factory=dict)
    demo_text: str = ""
    sysfs: dict[str, Any] = field(default_factory=dict)
    sim_time_us: float = 0.0
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0  # the simulator process (Verilator model + Python), at the end

    def step(self, name: str, **details: Any) -> None:
        self.steps.append({"step": name, "sim_us": round(get_sim_time("ns") / 1000, 3), **details})
        log.warning("[%2d] %s %s", len(self.steps), name, " ".join(f"{k}={v}" for k, v in details.items()))

    def text(self) -> str:
        d = self.device
        lines = [
            "siov-sim report",
            "===============",
            f"endpoint {d.get('bdf')}  vendor {d.get('vendor_id')} device {d.get('device_id')}  "
            f"class {d.get('class_code')}",
        ]
        for b in d.get("bars", []):
            lines.append(f"  BAR{b['index']}: {b['address']} ({'64' if b['is_64bit'] else '32'}-bit, "
                         f"{'prefetchable' if b['prefetchable'] else 'non-prefetchable'}) size {b['size']}")
        for c in d.get("capabilities", []):
            lines.append(f"  cap {c}")
        lines.append("")
        lines.append("steps")
        for i, s in enumerate(self.steps, 1):
            extra = " ".join(f"{k}={v}" for k, v in s.items() if k not in ("step", "sim_us"))
            lines.append(f"  {i:2d}. [{s['sim_us']:9.3f} us] {s['step']}  {extra}")
        lines.append("")
        lines.append(self.demo_text)
        lines.append("")
        lines.append(f"link: {self.link}")
        if self.sysfs.get("path"):
            lines.append(f"sysfs: {self.sysfs['path']} was live while the simulation ran ({self.sysfs['served']} "
                         "requests served); `make shell` keeps it up, then in another shell:")
            lines.append(f"  {self.sysfs['hint']}")
        elif self.sysfs:
            lines.append(f"sysfs: not mounted ({self.sysfs.get('reason')})")
        hip = self.options.get("hip", "none")
        lines.append(f"simulated time {self.sim_time_us:.3f} us, wall time {self.wall_s:.2f} s, "
                     f"peak memory {self.peak_rss_mb:.0f} MB ({self.options.get('link', '?')} link"
                     + (", PGO build" if self.options.get("pgo") else "")
                     + (", Intel P-tile hard IP: ep_ptile_top + cocotbext-pcie P-tile model (tb/pcie/ptile_ext.py)"
                        if hip == "ptile" else "") + ")")
        return "\n".join(lines) + "\n"


def _hex(v: int, w: int = 4) -> str:
    return f"0x{v:0{w}x}"


def describe(cs: ConfigSpace, bar_sizes: list[int | None]) -> dict[str, Any]:
    caps: list[str] = []
    if (p := cs.pcie()) is not None:
        caps.append(f"[{p.offset:03x}] PCI Express endpoint: MPS {p.max_payload}/{p.max_payload_supported} B, "
                    f"MRRS {p.max_read_request} B, ExtTag {'on' if p.ext_tag_enabled else 'off'}, "
                    f"End-End TLP prefix {'supported' if p.e2e_prefix_supported else 'no'} "
                    f"(max {p.max_e2e_prefixes})")
    if (m := cs.msix()) is not None:
        caps.append(f"[{m.offset:03x}] MSI-X: {m.table_size} vectors, {'enabled' if m.enabled else 'disabled'}, "
                    f"table BAR{m.table_bir}+0x{m.table_offset:x}, PBA BAR{m.pba_bir}+0x{m.pba_offset:x}")
    if (a := cs.pasid()) is not None:
        caps.append(f"[{a.offset:03x}] PASID: width {a.max_width}, exec {'+' if a.exec_supported else '-'}, "
                    f"priv {'+' if a.priv_supported else '-'}, {'enabled' if a.enabled else 'disabled'}")
    if (s := cs.siov_dvsec()) is not None:
        caps.append(f"[{s.offset:03x}] Intel Scalable IOV DVSEC (8086:0005 rev {s.revision} len {s.length}): "
                    f"dependency link {s.function_dependency_link}, homogeneous {s.homogeneous}, "
                    f"supported pages 0x{s.supported_page_sizes:x}, system page {s.system_page_bytes} B, "
                    f"IMS {'yes' if s.ims_supported else 'no'}")
    bars = [{**asdict(b), "address": _hex(b.address, 16), "size": bar_sizes[b.index]} for b in cs.bars()]
    return {"vendor_id": _hex(cs.vendor_id), "device_id": _hex(cs.device_id),
            "class_code": _hex(cs.class_code, 6), "bars": bars, "capabilities": caps}


@cocotb.test()
async def siov_demo(dut: Any) -> None:
    from siov_sim.model.mem import FlatHostMemory
    from siov_sim.sw.driver import PfDriver
    from siov_sim.sw.driver.regs_adi import RegAdiControl
    from siov_sim.sw.guest.demo import run_demo
    from siov_sim.sw.iommu import IommuDriver
    from siov_sim.tb.env import Env
    from siov_sim.tb.pcie.host_bus import as_host_bus
    from siov_sim.tb.pcie.iommu_rc import LOW_RAM_END, IommuRootComplex

    t0 = time.monotonic()
    opts = json.loads(os.environ.get("SIOV_SIM_OPTS", "{}"))
    rep = Report(options=opts)
    rc = IommuRootComplex(FlatHostMemory(0, LOW_RAM_END))
    env = Env(dut, rc=rc, num_adi=int(opts.get("num_adi", 16)))
    rep.options["link"] = env.link
    rep.options["pgo"] = env.link == "fast" and os.environ.get("SIOV_FAST_FLAGS") == "pgo"
    rep.options["hip"] = "ptile" if env.link == "ptile" else "none"
    dev = await env.start()
    assert dev is not None
    rep.step("enumerated by the root complex through the RTL config space", bdf=str(dev.pcie_id),
             vendor=_hex(dev.vendor_id), device=_hex(dev.device_id))

    # host software from here on: everything through the HostBus (MMIO/config TLPs, host RAM)
    bus = as_host_bus(rc)
    iommu = IommuDriver(bus)
    pf = PfDriver(bus, int(dev.pcie_id), iommu, RegAdiControl.create)
    caps = await pf.probe()
    rep.step("PF driver probed: SIOV DVSEC + PASID found, PASID enabled, page size set, IOMMU up",
             dvsec=_hex(caps.dvsec, 3), pasid_cap=_hex(caps.pasid_cap, 3), ims=caps.ims)

    # behind the P-tile the SIOV DVSEC sits at 0xD00 (served through CII): read all 4 KiB
    cs = ConfigSpace(await read_config_space(dev, 0x1000 if env.link == "ptile" else 0x200))
    rep.device = {"bdf": str(dev.pcie_id), **describe(cs, list(dev.bar_size))}

    from siov_sim.sw.vdcm import Vdcm
    from siov_sim.sw.vfio import Vfio
    from siov_sim.tb.live_sysfs import LiveSysfs

    vdcm = Vdcm(pf, vfio=Vfio(iommu))
    live, why = (None, "disabled (--sysfs none)")
    if opts.get("sysfs"):  # the live sysfs tree (sw/sysfs, tb/live_sysfs.py), served while we run
        live, why = await LiveSysfs.mount(bus, pf, vdcm, Path(opts["sysfs"]), parent_bdf=_parent_bdf(dev))
    rep.sysfs = {"path": str(live.path), "hint": live.hint(), "served": 0} if live else {"reason": why}
    if live:
        rep.step("sysfs tree mounted (PCI device + mdev bus)", path=str(live.path))
        live.serve_in_background()
    demo = None
    if int(opts.get("vdevs", 4)):
        demo = await run_demo(bus, pf, iommu, vdevs=int(opts.get("vdevs", 4)), size=int(opts.get("size", 4096)),
                              seed=int(opts.get("seed", 1)), progress=lambda msg: rep.step(msg), vdcm=vdcm)
        rep.demo = asdict(demo)
        rep.demo_text = demo.text()
    if live and opts.get("interactive"):
        await live.run_until_stopped(lambda msg: rep.step(msg, hint=live.hint()))
        for v in vdcm.vdevs():  # what the user created and left: removed in teardown order
            await vdcm.remove(v.uuid)
        rep.step("interactive session over", left_over=asdict(vdcm.usage()))
    if live:
        rep.sysfs["served"] = await live.close()
    env.check_link_clean()
    if env.link == "fast":
        env.ep.sync_stats()
    to_rtl, from_rtl = env.tlp_counts()
    rep.link = {"mode": env.link, "tlps_to_rtl": to_rtl, "tlps_from_rtl": from_rtl,
                "protocol_errors": len(env.ep.protocol_errors), "iommu": dict(rc.stats)}
    rep.sim_time_us = get_sim_time("ns") / 1000
    rep.wall_s = time.monotonic() - t0
    rep.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(asdict(rep), indent=2, default=str) + "\n")
    (OUT / "report.txt").write_text(rep.text())
    use = vdcm.usage()
    assert not (use.vdevs or use.adis_in_use or use.pasids_in_use), f"resources left over: {use}"
    if demo is None:
        return
    assert not any(v.errors for v in demo.vdevs), "a VDEV's traffic failed: see the report"
    assert demo.isolation.get("blocked") and demo.isolation.get("victim_intact"), "isolation was not shown"
    assert not demo.viommu or demo.viommu.get("fresh_after_invalidation"), f"vIOMMU: {demo.viommu}"
    assert not any(demo.leaks.values()), f"resources left over after removal: {demo.leaks}"


def _parent_bdf(dev: Any) -> int | None:
    """BDF of the bridge above the endpoint (the root port), for the sysfs device path."""
    parent = getattr(getattr(dev, "bus", None), "bridge", None)
    pid = getattr(parent, "pcie_id", None)
    return int(pid) if pid is not None else None


def check_knobs(vdevs: int, size: int, num_adi: int, seed: int, *, interactive: bool = False) -> list[str]:
    """Every problem with the ``make sim`` knobs, one line each (empty: all good), found before
    anything is built."""
    from siov_sim.sw.guest.demo import MAX_SIZE, host_ram_needed
    from siov_sim.tb.pcie.host_bus import DEFAULT_ALLOC_BASE
    from siov_sim.tb.pcie.iommu_rc import LOW_RAM_END

    errs = []
    if not (4 <= num_adi <= 4096 and num_adi & (num_adi - 1) == 0):
        errs.append(f"NUM_ADI={num_adi}: ep_top supports a power of two from 4 to 4096 ADIs")
    if not (0 if interactive else 1) <= vdevs <= max(num_adi, 1):
        errs.append(f"VDEVS={vdevs}: must be 1..NUM_ADI ({num_adi}) (0 for make shell): every VDEV needs an ADI")
    if size < 4 or size % 4 or size > MAX_SIZE:
        errs.append(f"SIZE={size}: must be a multiple of 4 from 4 to {MAX_SIZE} bytes (the largest COPY/FILL "
                    "a descriptor can move)")
    elif vdevs >= 1:
        need, have = host_ram_needed(vdevs, size), LOW_RAM_END - DEFAULT_ALLOC_BASE
        if need > have * 9 // 10:  # leave room for IOMMU tables, rings and page tables
            errs.append(f"VDEVS={vdevs} x SIZE={size}: the VMs and processes would need {need >> 20} MiB of the "
                        f"{have >> 20} MiB of simulated host RAM; use fewer VDEVs or a smaller SIZE")
    if not 0 <= seed < 1 << 32:
        errs.append(f"SEED={seed}: must be 0 .. 2**32-1")
    return errs


class _OneLineParser(argparse.ArgumentParser):
    """Bad knobs get one line (``make sim: ...``), not a usage block."""

    def error(self, message: str) -> NoReturn:
        m = re.match(r"argument --([\w-]+): (.*)", message)  # name the make knob, not the option
        if m:
            message = f"{m.group(1).replace('-', '_').upper()}: {m.group(2)}"
        self.exit(2, f"make sim: {message}\n")


def main() -> int:
    ap = _OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vdevs", type=int, default=4, help="number of virtual devices to compose")
    ap.add_argument("--size", type=int, default=4096, help="bytes per transfer")
    ap.add_argument("--seed", type=int, default=1, help="random seed of the scenario and of cocotb")
    ap.add_argument("--num-adi", type=int, default=16, help="ep_top NumAdi parameter (ADIs in the RTL)")
    ap.add_argument("--link", choices=("fast", "accurate"), default="fast",
                    help="fast: DMA data path in C++ (tb/fast); accurate: cocotbext-pcie link, every hop")
    ap.add_argument("--hip", choices=("none", "ptile"), default="none",
                    help="none: ep_top on the generic TLP streams; ptile: ep_ptile_top behind the Intel P-tile "
                    "hard-IP model (tb/pcie/ptile_ext.py; its own link, --link is ignored)")
    ap.add_argument("--pgo", choices=("0", "1"), default="0",
                    help="1: the fast link's model compiled with GCC profile-guided optimisation (trained "
                    "on tb/fast/pgo_train.py; the first run builds twice and trains, ~1 min more)")
    ap.add_argument("--out", default=os.environ.get("SIOV_SIM_OUT", "build/sim"),
                    help="directory for report.txt/report.json (and waves); default $SIOV_SIM_OUT or build/sim")
    ap.add_argument("--sysfs", default="build/sim/sysfs",
                    help="where to mount the live sysfs tree while the simulation runs ('none': nowhere)")
    ap.add_argument("--interactive", action="store_true",
                    help="keep the simulation running with the sysfs tree mounted until Ctrl-C (make shell)")
    args = ap.parse_args()
    errs = check_knobs(args.vdevs, args.size, args.num_adi, args.seed, interactive=args.interactive)
    if errs:
        for e in errs:
            sys.stderr.write(f"make sim: {e}\n")
        return 2
    logging.basicConfig(level=logging.WARNING)
    from siov_sim.tb.runner import ROOT, run_rtl

    out = (ROOT / args.out).resolve()
    sysfs = "" if args.sysfs == "none" else os.path.abspath(args.sysfs)  # no resolve(): may be a dead mount
    env = {"SIOV_SIM_OPTS": json.dumps({"vdevs": args.vdevs, "size": args.size, "seed": args.seed,
                                        "sysfs": sysfs, "interactive": args.interactive,
                                        "num_adi": args.num_adi}),
           "SIOV_SIM_OUT": str(out)}
    env["COCOTB_RANDOM_SEED"] = str(args.seed)
    params = {"NumAdi": args.num_adi}
    t0 = time.monotonic()
    if sysfs:
        print(f"siov-sim: the live sysfs tree will be mounted at {sysfs} once the device is probed", flush=True)
    old = {}
    if args.interactive:  # Ctrl-C is for the simulation (it unmounts and tears down); we wait for it
        old = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if args.hip == "ptile":
            run_rtl("ep_ptile_top", test_module="siov_sim.tb.sim", testcase="siov_demo", parameters=params,
                    extra_env=env, test_dir=out, link="accurate")
        else:
            run_rtl("ep_top", test_module="siov_sim.tb.sim", testcase="siov_demo", parameters=params,
                    extra_env=env, test_dir=out, link=args.link,
                    fast_flags="pgo" if args.pgo == "1" and args.link == "fast" else "fast")
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        if sysfs:
            from siov_sim.sw.sysfs.fuse import force_unmount, is_stale

            if is_stale(Path(sysfs)):  # the simulation was killed: do not leave a dead mount
                force_unmount(Path(sysfs))
    sys.stdout.write("\n" + (out / "report.txt").read_text())
    sys.stdout.write(f"(report: {out / 'report.txt'}, {out / 'report.json'}; total wall incl. build "
                     f"{time.monotonic() - t0:.1f} s)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
