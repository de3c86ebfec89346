"""Figures from the benchmark JSON (``make bench`` runs this last): PNGs in ``build/bench/``.

* ``dma_throughput.png``: DMA throughput vs number of ADIs (bench_dma, accurate link);
* ``cosim_speed.png``: wall-clock speed per link mode (bench_cosim: fast, its PGO build, stock, no-Python limits);
* ``vdev_scale.png``: wall time and VDEV start latency vs number of VDEVs (bench_scale).

A figure whose JSON is missing is skipped with a note, so one bench can be rerun on its own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "bench"


def _load(name: str) -> dict[str, Any] | None:
    p = OUT / name
    if not p.exists():
        print(f"plots: {name} missing, its figure is skipped")
        return None
    data: dict[str, Any] = json.loads(p.read_text())
    return data


def dma_throughput(d: dict[str, Any]) -> Path:
    cases = d["cases"]
    x = [c["adis"] for c in cases]
    y = [c["bandwidth_GBps"] for c in cases]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, y, "o-", label="4 KiB COPY, measured")
    ax.axhline(d.get("limit_GBps", 8.0), ls="--", color="grey", label="256 bit x 250 MHz")
    for xi, yi, c in zip(x, y, cases, strict=True):
        ax.annotate(f"{100 * c['efficiency']:.0f} %", (xi, yi), textcoords="offset points", xytext=(4, -12))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("ADIs with traffic")
    ax.set_ylabel("GB/s (simulated)")
    ax.set_ylim(0, d.get("limit_GBps", 8.0) * 1.1)
    ax.set_title("DMA throughput vs ADIs (accurate link)")
    ax.legend(loc="lower right")
    path = OUT / "dma_throughput.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cosim_speed(d: dict[str, Any]) -> Path:
    fast, stock, limit = d["fast"], d["stock"], d["limit"]
    pgo, limit_pgo = d.get("fast_pgo"), d.get("limit_pgo")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    mb_names, mb_cols = ["stock\n(cocotbext-pcie)", "fast"], ["#999", "#2a7"]
    mb_vals = [stock["mb_per_s"], fast["mb_per_s"]]
    if pgo:
        mb_names, mb_vals, mb_cols = [*mb_names, "fast\nPGO build"], [*mb_vals, pgo["mb_per_s"]], [*mb_cols, "#185"]
    a1.bar(mb_names, mb_vals, color=mb_cols)
    a1.axhline(10, ls="--", color="grey")
    a1.set_ylabel("checked COPY payload, MB per wall second")
    a1.set_title(f"throughput ({d['ratios']['fast_over_stock_mb_per_s']}x)")
    names = ["stock", "fast", "fast, idle", "limit\n(no Python)"]
    vals = [stock["cycles_per_s"], fast["cycles_per_s"], fast["idle_cycles_per_s"], limit["window_cycles_per_s"]]
    cols = ["#999", "#2a7", "#8c8", "#47a"]
    if pgo and limit_pgo:
        names += ["fast\nPGO", "limit\nPGO"]
        vals += [pgo["cycles_per_s"], limit_pgo["window_cycles_per_s"]]
        cols += ["#185", "#236"]
    a2.bar(names, [v / 1000 for v in vals], color=cols)
    a2.axhline(500, ls="--", color="grey")
    a2.set_ylabel("RTL k cycles per wall second")
    a2.set_title("simulation rate (250 MHz clock)")
    fig.suptitle("co-simulation speed, same RTL and workload", fontsize=10)
    path = OUT / "cosim_speed.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def vdev_scale(d: dict[str, Any]) -> Path:
    pts = sorted(d["fast"], key=lambda p: p["vdevs"])
    x = [p["vdevs"] for p in pts]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
    a1.plot(x, [p["process_wall_s"] for p in pts], "o-", color="#2a7", label="fast link")
    ref = d["accurate_reference"]
    a1.plot([ref["vdevs"]], [ref["process_wall_s"]], "s", color="#999", label="accurate link")
    a1.axhline(60, ls="--", color="grey")
    a1.set_xlabel("VDEVs created, used, removed")
    a1.set_ylabel("wall seconds (model built)")
    a1.set_title("make sim VDEVS=N NUM_ADI=2048")
    a1.legend()
    med = [p["start_us"]["median"] for p in pts]
    lo = [p["start_us"]["median"] - p["start_us"]["min"] for p in pts]
    hi = [p["start_us"]["max"] - p["start_us"]["median"] for p in pts]
    a2.errorbar(x, med, yerr=[lo, hi], fmt="o-", capsize=4, color="#47a")
    a2.set_xlabel("VDEVs")
    a2.set_ylabel("simulated us, create -> first DMA done")
    a2.set_title("VDEV start latency (min / median / max)")
    path = OUT / "vdev_scale.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, fn in (("dma_efficiency.json", dma_throughput), ("cosim.json", cosim_speed), ("scale.json", vdev_scale)):
        d = _load(name)
        if d is not None:
            print(f"plots: {fn(d)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
