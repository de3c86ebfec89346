"""Co-simulation speed: the fast link against the stock cocotbext-pcie link and the no-Python limit.

Run as ``python tests/bench/bench_cosim.py`` (``make bench``); writes ``build/bench/cosim.json``
and prints a table. The workload is ``make sim``-like traffic: four VDEVs of the ``make sim``
kinds (two AVF guests with four queues each, a DPDK-like PMD, an SVA process: ten queues, ten
PASIDs), every queue posting batches of eight 64 KiB COPYs at the same time, every byte checked
after every batch, the IOMMU translating every request (IOTLB hits allowed); see
``sw/guest/demo.py::run_bandwidth``. The same build parameters and workload run:

1. **fast**: ``ep_fast_top`` (tb/fast): DMA served in C++ through the IOTLB mirror, clock in HDL;
   the run is recorded (every input the RTL got, cycle by cycle);
2. **limit**: the same Verilated model, linked from the fast build's own objects into
   ``tb/fast/replay_main.cpp``, replays that recording with no Python at all; its output hash
   must equal the recorded run's (same workload, proven);
3. **stock**: ``ep_top`` on the accurate link (cocotbext-pcie ``SimPort`` on every hop, Python
   clock, Python per beat), the reference every simulated-time figure comes from;
4. **profile**: the fast run again with cProfile on during the traffic only, to say where the
   wall time the limit does not explain goes;
5. **fast PGO** and **limit PGO**: 1 and 2 on the model compiled with GCC profile-guided
   optimisation (``make sim PGO=1``; trained on ``tb/fast/pgo_train.py``, another workload), the
   replay again checking that the PGO build sends exactly what it sent in the recorded run.

Figures: payload MB per wall second (COPY bytes, each moved twice over the link), RTL cycles per
wall second (250 MHz clock) with the traffic and idle, wall µs per TLP.
"""

from __future__ import annotations

import cProfile
import json
import logging
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cocotb
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "bench"
NUM_ADI = 16
CLK_NS = 4
WORKLOAD = {
    "vdevs": 4,
    "size": 65536,
    "batch": 8,
    "rounds": 6,
    "seed": 7,
    **json.loads(os.environ.get("SIOV_BENCH_WORKLOAD", "{}")),
}  # override for experiments
IDLE_NS = 400_000  # 100k cycles with nothing to do
GOALS = {"mb_per_s": 10.0, "cycles_per_s": 500_000.0, "stock_ratio": 25.0}

log = logging.getLogger(f"cocotb.{__name__}")

# where Python time goes, by source path (first match wins)
CATEGORIES = [
    ("cocotb scheduler and triggers", "/cocotb/"),
    ("cocotbext-pcie (config, interrupts)", "/cocotbext/"),
    ("host software (sw/: drivers, VDCM, VFIO, IOMMU driver)", "/sw/"),
    ("IOMMU model (model/)", "/model/"),
    ("fast-link glue (tb/fast, tb/pcie)", "/tb/"),
    ("functional coverage (cocotb-coverage)", "cocotb_coverage"),
    ("host port C++ called from Python (ctypes)", "<built-in method"),
]


def _category(filename: str, func: str) -> str:
    for name, key in CATEGORIES:
        if key in filename or key in func:
            return name
    return "other Python"


@cocotb.test()
async def cosim_bandwidth(dut: Any) -> None:
    from siov_sim.model.mem import FlatHostMemory
    from siov_sim.sw.driver import PfDriver
    from siov_sim.sw.driver.regs_adi import RegAdiControl
    from siov_sim.sw.guest.demo import run_bandwidth
    from siov_sim.sw.iommu import IommuDriver
    from siov_sim.tb.env import Env
    from siov_sim.tb.pcie.host_bus import as_host_bus
    from siov_sim.tb.pcie.iommu_rc import LOW_RAM_END, IommuRootComplex

    opts = json.loads(os.environ["SIOV_BENCH_OPTS"])
    rc = IommuRootComplex(FlatHostMemory(0, LOW_RAM_END))
    env = Env(dut, rc=rc)
    fast = env.link == "fast"
    record = opts.get("record")
    if fast and record:
        env.ep.lib.record_start()
    dev = await env.start()
    assert dev is not None
    bus = as_host_bus(rc)
    iommu = IommuDriver(bus)
    pf = PfDriver(bus, int(dev.pcie_id), iommu, RegAdiControl.create)
    await pf.probe()
    prof = cProfile.Profile() if opts.get("profile") else None
    mark: dict[str, Any] = {}

    def on_phase(phase: str) -> None:
        if fast and record:
            env.ep.lib.record_mark(1 if phase == "start" else 2)
        if prof is not None:
            (prof.enable if phase == "start" else prof.disable)()
        mark[phase] = (time.perf_counter(), time.process_time(), float(get_sim_time("ns")), *env.tlp_counts())

    wl = opts["workload"]
    rep = await run_bandwidth(
        bus,
        pf,
        iommu,
        vdevs=wl["vdevs"],
        size=wl["size"],
        batch=wl["batch"],
        rounds=wl["rounds"],
        seed=wl["seed"],
        on_phase=on_phase,
    )
    assert not rep.errors and rep.mismatches == 0, (rep.errors, rep.mismatches)
    env.check_link_clean()
    (w0, c0, s0, up0, dn0), (w1, c1, s1, up1, dn1) = mark["start"], mark["end"]
    wall, sim_ns = w1 - w0, s1 - s0
    cpu = c1 - c0  # this process's CPU seconds (model + Python): a quiet machine's wall seconds
    tlps = (up1 - up0) + (dn1 - dn0)
    t0, tc0 = time.perf_counter(), time.process_time()
    await Timer(IDLE_NS, unit="ns")
    idle_wall, idle_cpu = time.perf_counter() - t0, time.process_time() - tc0
    if fast and record:
        env.ep.lib.record_stop(record)
    res: dict[str, Any] = {
        "link": env.link,
        "bytes": rep.bytes,
        "copies": rep.copies,
        "queues": rep.queues,
        "wall_s": round(wall, 4),
        "sim_us": round(sim_ns / 1000, 3),
        "cycles": round(sim_ns / CLK_NS),
        "tlps": tlps,
        "mb_per_s": round(rep.bytes / wall / 1e6, 3),
        "cycles_per_s": round(sim_ns / CLK_NS / wall),
        "us_per_tlp": round(wall / tlps * 1e6, 3),
        "sim_gb_per_s": round(rep.bytes / sim_ns, 3),
        "idle_cycles_per_s": round(IDLE_NS / CLK_NS / idle_wall),
        "cpu_s": round(cpu, 4),
        "mb_per_cpu_s": round(rep.bytes / cpu / 1e6, 3),
        "cycles_per_cpu_s": round(sim_ns / CLK_NS / cpu),
        "idle_cycles_per_cpu_s": round(IDLE_NS / CLK_NS / idle_cpu),
    }
    if fast:
        st = env.ep.sync_stats()
        res["host_port"] = {
            k: st[k] for k in ("wr_fast", "rd_fast", "cpl_fast", "tlb_hit", "resolve", "slow", "to_py", "from_py")
        }
    if prof is not None:
        prof.dump_stats(str(OUT / "cosim-profile.pstat"))
        ps = pstats.Stats(prof)
        cats: dict[str, float] = {}
        for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in ps.stats.items():  # type: ignore[attr-defined]
            c = _category(filename, func)
            cats[c] = cats.get(c, 0.0) + tt
        res["python_profile_s"] = {k: round(v, 4) for k, v in sorted(cats.items(), key=lambda kv: -kv[1])}
    Path(opts["out"]).write_text(json.dumps(res, indent=1))


# each lever of the fast link taken away on its own (same workload, fewer rounds)
LEVERS: list[tuple[str, dict[str, Any]]] = [
    ("fast link, every lever", {}),
    ("clock from a cocotb Clock instead of HDL", {"parameters": {"ExtClock": 1}, "env": {"SIOV_FAST_CLOCK": "python"}}),
    ("MMIO through the root complex's switch/bridge tasks", {"env": {"SIOV_FAST_MMIO": "rc"}}),
    ("cocotb runner's Verilator/C++ options (public-flat-rw, -Os)", {"fast_flags": "cocotb"}),
    ("Verilator --threads 2", {"build_args": ["--threads", "2"], "min_cpus": 3}),
]
LEVER_ROUNDS = 2


def _run(
    link: str,
    tag: str,
    *,
    workload: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    fast_flags: str = "fast",
    build_args: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    from siov_sim.tb.runner import run_rtl

    out = OUT / f"cosim-{tag}.json"
    opts = {"workload": workload or WORKLOAD, "out": str(out), **extra}
    t0 = time.monotonic()
    run_rtl(
        "ep_top",
        test_module="tests.bench.bench_cosim",
        testcase="cosim_bandwidth",
        parameters={"NumAdi": NUM_ADI, **(parameters or {})},
        link=link,
        test_dir=OUT / f"run-{tag}",
        fast_flags=fast_flags,
        build_args=build_args or [],
        extra_env={"SIOV_BENCH_OPTS": json.dumps(opts), "COCOTB_RANDOM_SEED": "1", **(env or {})},
    )
    res: dict[str, Any] = json.loads(out.read_text())
    res["process_wall_s"] = round(time.monotonic() - t0, 2)
    return res


def _replay(recording: Path, flags: str = "fast") -> dict[str, Any]:
    from siov_sim.tb.runner import build_fast, build_replay

    exe = build_replay(build_fast({"NumAdi": NUM_ADI}, flags=flags))
    out = OUT / f"cosim-limit{'' if flags == 'fast' else '-' + flags}.json"
    r = subprocess.run([str(exe), str(recording), str(out)], capture_output=True, text=True, check=False)
    if r.returncode not in (0, 1) or not out.exists():
        raise RuntimeError(f"replay harness failed ({r.returncode}): {r.stderr or r.stdout}")
    res: dict[str, Any] = json.loads(out.read_text())
    return res


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--reuse-stock",
        action="store_true",
        help="take the stock run from the last cosim-stock.json (it takes minutes)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    OUT.mkdir(parents=True, exist_ok=True)
    recording = OUT / "cosim-fast.rec"
    load0 = os.getloadavg()[0]
    fast = _run("fast", "fast", record=str(recording))
    limit = _replay(recording)
    recording.unlink(missing_ok=True)
    # the same, on the PGO build of the same model (tb/fast/pgo_train.py trains it on another workload)
    pgo = _run("fast", "pgo", record=str(recording), fast_flags="pgo")
    limit_pgo = _replay(recording, "pgo")
    recording.unlink(missing_ok=True)
    prof = _run("fast", "profile", profile=True)
    stock_file = OUT / "cosim-stock.json"
    if args.reuse_stock and stock_file.exists():
        stock = json.loads(stock_file.read_text())
    else:
        stock = _run("accurate", "stock")
    levers = []
    short = {**WORKLOAD, "rounds": LEVER_ROUNDS}
    for k, (name, how) in enumerate(LEVERS):
        need = how.pop("min_cpus", 1)
        if (os.cpu_count() or 1) < need:  # two model threads spin-wait for each other: with Python on
            levers.append(
                {
                    "variant": name,
                    "error": f"skipped: needs {need} cores, this machine has "  # a
                    f"{os.cpu_count()} (model threads spin-waiting on a shared core stall for ms)",
                }
            )
            continue
        try:
            r = _run("fast", f"lever{k}", workload=short, **how)
            levers.append(
                {
                    "variant": name,
                    "mb_per_s": r["mb_per_s"],
                    "cycles_per_s": r["cycles_per_s"],
                    "idle_cycles_per_s": r["idle_cycles_per_s"],
                    "wall_s": r["wall_s"],
                    "mb_per_cpu_s": r["mb_per_cpu_s"],
                    "cycles_per_cpu_s": r["cycles_per_cpu_s"],
                }
            )
        except Exception as exc:  # a variant that does not build or run here is reported, not fatal
            levers.append({"variant": name, "error": str(exc).splitlines()[0][:200]})
    if levers and "mb_per_s" in levers[0]:
        for lv in levers:
            if "mb_per_s" in lv:
                lv["vs_all_levers"] = round(lv["mb_per_s"] / levers[0]["mb_per_s"], 2)
                lv["vs_all_levers_cpu"] = round(lv["mb_per_cpu_s"] / levers[0]["mb_per_cpu_s"], 2)
    load1 = os.getloadavg()[0]

    wall = fast["wall_s"]
    eval_s = min(fast["cycles"] / limit["window_cycles_per_s"], wall) if limit["window_cycles_per_s"] else 0.0
    pyprof = prof.get("python_profile_s", {})
    py_total = sum(pyprof.values())
    table = [
        {
            "where": "RTL model evaluation (the no-Python replay's time for the same cycles)",
            "s": round(eval_s, 3),
            "pct": round(100 * eval_s / wall, 1),
        },
        {
            "where": "everything else: Python, cocotb's Verilator loop and VPI, host port",
            "s": round(wall - eval_s, 3),
            "pct": round(100 * (wall - eval_s) / wall, 1),
        },
    ]
    python_split = (
        [  # measured in the cProfile'd run (profiler overhead included): shares, not wall time
            {"where": name, "s": round(secs, 3), "pct_of_python": round(100 * secs / py_total, 1)}
            for name, secs in pyprof.items()
        ]
        if py_total
        else []
    )
    result = {
        "workload": {**WORKLOAD, "num_adi": NUM_ADI, "queues": fast["queues"], "bytes": fast["bytes"]},
        "fast": fast,
        "fast_pgo": pgo,
        "stock": stock,
        "limit": limit,
        "limit_pgo": limit_pgo,
        "ratios": {
            "fast_over_stock_mb_per_s": round(fast["mb_per_s"] / stock["mb_per_s"], 1),
            "fast_over_stock_cycles_per_s": round(fast["cycles_per_s"] / stock["cycles_per_s"], 1),
            "fast_over_limit_cycles_per_s": round(fast["cycles_per_s"] / limit["window_cycles_per_s"], 3),
            "pgo_over_limit_pgo_cycles_per_s": round(pgo["cycles_per_s"] / limit_pgo["window_cycles_per_s"], 3),
            "pgo_over_stock_mb_per_s": round(pgo["mb_per_s"] / stock["mb_per_s"], 1),
            "fast_over_stock_mb_per_cpu_s": round(fast["mb_per_cpu_s"] / stock["mb_per_cpu_s"], 1),
            "fast_over_limit_cycles_per_cpu_s": round(
                fast["cycles_per_cpu_s"] / limit["window_cycles_per_cpu_s"], 3
            ),
        },
        # wall figures are what a user sees; with other jobs on the cores they drop while the CPU
        # figures (this process's CPU seconds) stay what a quiet machine's wall figures would be
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_1min_before": round(load0, 2),
            "loadavg_1min_after": round(load1, 2),
        },
        "wall_split": table,
        "python_split_profiled": python_split,
        "levers": levers,
        "goals": {
            "mb_per_s >= 10": fast["mb_per_s"] >= GOALS["mb_per_s"],
            "cycles_per_s >= 500k": fast["cycles_per_s"] >= GOALS["cycles_per_s"],
            "cycles_per_s >= 500k (PGO build)": pgo["cycles_per_s"] >= GOALS["cycles_per_s"],
            "stock ratio >= 25": fast["mb_per_s"] / stock["mb_per_s"] >= GOALS["stock_ratio"],
            "limit replay reproduced the run": bool(limit["same_output_as_recorded"]),
            "PGO limit replay reproduced the PGO run": bool(limit_pgo["same_output_as_recorded"]),
            "mb_per_cpu_s >= 10": fast["mb_per_cpu_s"] >= GOALS["mb_per_s"],
            "cycles_per_cpu_s >= 500k": fast["cycles_per_cpu_s"] >= GOALS["cycles_per_s"],
        },
    }
    (OUT / "cosim.json").write_text(json.dumps(result, indent=1) + "\n")
    w = result["workload"]
    print(
        f"co-simulation speed: {w['vdevs']} VDEVs / {w['queues']} queues, {w['batch']} x {w['size'] // 1024} KiB "
        f"COPYs per batch, {w['rounds']} rounds, {fast['bytes'] / 1e6:.1f} MB checked (NumAdi {NUM_ADI})"
    )
    m = result["machine"]
    print(
        f"machine: {m['cpus']} cores, load average {m['loadavg_1min_before']} before / "
        f"{m['loadavg_1min_after']} after (per wall second and per CPU second of the simulator process)"
    )
    print(
        f"{'mode':8} {'MB/s':>8} {'cycles/s':>10} {'idle cyc/s':>10} {'us/TLP':>8} {'TLPs':>7} {'wall s':>7} "
        f"{'sim us':>8} | {'MB/cpu-s':>8} {'cyc/cpu-s':>10} {'idle/cpu-s':>10}"
    )
    for name, r in (("fast", fast), ("fast PGO", pgo), ("stock", stock)):
        print(
            f"{name:8} {r['mb_per_s']:8.2f} {r['cycles_per_s']:10.0f} {r['idle_cycles_per_s']:10.0f} "
            f"{r['us_per_tlp']:8.2f} {r['tlps']:7d} {r['wall_s']:7.2f} {r['sim_us']:8.1f} | "
            f"{r.get('mb_per_cpu_s', 0):8.2f} {r.get('cycles_per_cpu_s', 0):10.0f} "
            f"{r.get('idle_cycles_per_cpu_s', 0):10.0f}"
        )
    print(
        f"{'limit':8} {'':8} {limit['window_cycles_per_s']:10.0f} {'':10} {'':8} {'':7} "
        f"{limit['window_seconds']:7.2f} {'':8} | {'':8} {limit.get('window_cycles_per_cpu_s', 0):10.0f}"
        f"   (no Python: replay of the fast run, same output {limit['same_output_as_recorded']})"
    )
    print(
        f"{'lim PGO':8} {'':8} {limit_pgo['window_cycles_per_s']:10.0f} {'':10} {'':8} {'':7} "
        f"{limit_pgo['window_seconds']:7.2f} {'':8} | {'':8} {limit_pgo.get('window_cycles_per_cpu_s', 0):10.0f}"
        f"   (replay of the PGO run on the PGO build, same output {limit_pgo['same_output_as_recorded']})"
    )
    r = result["ratios"]
    print(
        f"fast / stock: {r['fast_over_stock_mb_per_s']}x MB/s ({r['fast_over_stock_mb_per_cpu_s']}x per CPU s); "
        f"fast / limit: {100 * r['fast_over_limit_cycles_per_s']:.0f} % of the no-Python cycle rate "
        f"({100 * r['fast_over_limit_cycles_per_cpu_s']:.0f} % per CPU s); PGO build: "
        f"{r['pgo_over_stock_mb_per_s']}x stock, {100 * r['pgo_over_limit_pgo_cycles_per_s']:.0f} % of its own limit"
    )
    print(f"each lever taken away ({LEVER_ROUNDS} rounds of the same workload):")
    for lv in levers:
        if "error" in lv:
            print(f"  {lv['variant']:60} did not run: {lv['error']}")
        else:
            print(
                f"  {lv['variant']:60} {lv['mb_per_s']:6.2f} MB/s {lv['cycles_per_s']:8.0f} cycles/s "
                f"({lv['vs_all_levers']:.2f}x; per CPU s {lv['mb_per_cpu_s']:6.2f} MB/s, "
                f"{lv['vs_all_levers_cpu']:.2f}x)"
            )
    print("where the fast run's wall time goes:")
    for row in table:
        print(f"  {row['pct']:5.1f} %  {row['s']:7.3f} s  {row['where']}")
    print("Python time by area (a cProfile'd run of the same workload, profiler overhead included):")
    for row in python_split:
        print(f"  {row['pct_of_python']:5.1f} %  {row['s']:7.3f} s  {row['where']}")
    print("goals: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in result["goals"].items()))
    print(f"(written {OUT / 'cosim.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
