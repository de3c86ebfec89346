"""VDEV scale: ``make sim`` with many VDEVs created on demand, on the fast link.

Run as ``python tests/bench/bench_scale.py`` (``make bench``); writes ``build/bench/scale.json``.
Each point is a ``make sim VDEVS=N NUM_ADI=2048`` run (the E810-like case is 700 VDEVs): every
VDEV is created, its driver started, a first checked DMA run on it, then COPY/FILL/SEND traffic
with every byte checked, the isolation breach, and removal with nothing left over. Reported per
point: wall time of the simulator run (model already built), simulated time, the simulated time
from ``create`` to the VDEV's first completed DMA (min / median / max over the VDEVs) and the
simulator process's peak memory. The 64-VDEV point is also run on the accurate link for the ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "bench"
NUM_ADI = 2048
POINTS = [int(n) for n in os.environ.get("SIOV_SCALE_POINTS", "64,256,700").split(",")]
REF_POINT = 64  # also run on the accurate link, for the ratio
GOAL_S = 60.0  # 700 VDEVs in under a minute


def _sim(vdevs: int, link: str) -> dict[str, Any]:
    outdir = OUT / f"scale-{link}-{vdevs}"
    out = outdir / "report.json"
    t0 = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "siov_sim.tb.sim",
            "--vdevs",
            str(vdevs),
            "--num-adi",
            str(NUM_ADI),
            "--link",
            link,
            "--out",
            str(outdir),
            "--sysfs",
            "none",  # no FUSE mount: nothing to serve, and a user's `make sim` may hold the default path
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.monotonic() - t0
    rep = json.loads(out.read_text())
    starts = sorted(v["start_ns"] / 1000 for v in rep["demo"]["vdevs"])
    errors = sum(v["errors"] for v in rep["demo"]["vdevs"])
    return {
        "vdevs": len(starts),
        "link": link,
        "process_wall_s": round(wall, 2),
        "scenario_wall_s": round(rep["wall_s"], 2),
        "sim_us": round(rep["sim_time_us"], 1),
        "peak_rss_mb": rep["peak_rss_mb"],
        "start_us": {
            "min": round(starts[0], 2),
            "median": round(starts[len(starts) // 2], 2),
            "max": round(starts[-1], 2),
        },
        "errors": errors,
        "left_over": rep["demo"]["leaks"],
        "tlps": rep["link"]["tlps_to_rtl"] + rep["link"]["tlps_from_rtl"],
    }


def main() -> int:
    from siov_sim.tb.runner import build_fast

    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    build_fast({"NumAdi": NUM_ADI})
    build_s = time.monotonic() - t0
    points = [_sim(n, "fast") for n in POINTS]
    ref = _sim(REF_POINT, "accurate")
    same = next((p for p in points if p["vdevs"] == REF_POINT), None) or _sim(REF_POINT, "fast")
    big = max(points, key=lambda p: p["vdevs"])
    result = {
        "num_adi": NUM_ADI,
        "build_s": round(build_s, 1),
        "fast": points,
        "accurate_reference": ref,
        f"ratio_at_{ref['vdevs']}": round(ref["process_wall_s"] / same["process_wall_s"], 1),
        "goal": {
            f"{big['vdevs']} VDEVs < {GOAL_S:.0f} s": big["process_wall_s"] < GOAL_S,
            "nothing left over": all(not any(p["left_over"].values()) for p in points),
            "no traffic errors": all(p["errors"] == 0 for p in points),
        },
    }
    (OUT / "scale.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"VDEV scale on the fast link (NumAdi {NUM_ADI}; model build {build_s:.0f} s, not counted below)")
    print(
        f"{'VDEVs':>6} {'link':8} {'wall s':>7} {'sim us':>9} {'start us min/med/max':>22} {'peak MB':>8} {'TLPs':>8}"
    )
    for p in [*points, ref]:
        s = p["start_us"]
        print(
            f"{p['vdevs']:6d} {p['link']:8} {p['process_wall_s']:7.1f} {p['sim_us']:9.0f} "
            f"{s['min']:7.2f}/{s['median']:6.2f}/{s['max']:7.2f} {p['peak_rss_mb']:8.0f} {p['tlps']:8d}"
        )
    print("goals: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in result["goal"].items()))
    print(f"(written {OUT / 'scale.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
