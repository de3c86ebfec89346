"""DMA bandwidth of the full chip: 4 KiB COPYs spread over 1, 16 and 64 ADIs.

Run as ``python tests/bench/bench_dma.py`` (``make bench``): builds ep_top (NumAdi 1024, the
build the system tests share), runs the cocotb test :func:`dma_bandwidth` below through the IOMMU
root complex (each ADI with its own PASID and second-stage domain), prints a table and writes
``build/bench/dma_efficiency.json``.

Method: the engine is stopped (``pf_ctrl.enable`` = 0), every ADI's ring is filled with 4 KiB
COPYs (one doorbell each), then the engine is started; the time runs from that register write
to the last beat the RTL puts on ``tx_wr_req_tlp`` (the last completion record / data).
Efficiency = bytes copied / (time x 256 bit x 250 MHz = 8 GB/s); reads and writes use separate
link directions, so a COPY engine can reach 1.0 per direction. No backpressure, no reordering.

Where the rest goes, all counted on the five streams by ``EpDevice`` (not estimated):
``rx_cpl`` (read data in, the bottleneck stream for COPY) cycles = payload beats of data reads +
beats of descriptor-fetch completions + beats lost to completions that end mid-beat + idle
cycles (nothing to deliver: read latency / not enough reads outstanding) + stall cycles (RTL not
ready); the same split for ``tx_wr`` (data beats, completion records, IMS); the per-MRd read
latency (MRd leaves the RTL -> first completion handed back); and, for a real link, the TLP
header/prefix bytes that the sideband here carries for free.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import cocotb
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time

from siov_sim.model.adi import Descriptor, Opcode
from siov_sim.sw.regs import Bar0

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "bench" / "dma_efficiency.json"
NUM_ADI = 1024
CLK_NS = 4
BEAT_BYTES = 32
LIMIT_GBPS = BEAT_BYTES / CLK_NS  # 8 GB/s
SIZE = 4096
CASES = [(1, 32), (16, 8), (64, 4)]  # (ADIs, COPYs per ADI)
LINK_FRAMING = 8  # Gen3: 4-byte STP token + 4-byte LCRC per TLP (DLLPs not counted)

log = logging.getLogger(f"cocotb.{__name__}")


def _stream_summary(st: Any, cycles: int) -> dict[str, Any]:
    return {"frames": st.frames, "beats": st.beats, "payload_bytes": st.payload_bytes,
            "header_bytes": st.header_bytes, "stall_cycles": st.stall_cycles,
            "idle_cycles": max(0, cycles - st.beats - st.stall_cycles),
            "utilization": round(st.beats / cycles, 4) if cycles else 0.0}


async def _run_case(s: Any, n_adis: int, per_adi: int, first_adi: int) -> dict[str, Any]:
    adis = list(range(first_adi, first_adi + n_adis))
    for a in adis:
        await s.add_adi(a, ring_log2=6, data_pages=2 * per_adi)
    await s.bar0.write(Bar0.PF_CTRL, Bar0.PF_CTRL.pack(enable=0))
    for a in adis:
        ctx = s.adis[a]
        half = ctx.data_size // 2
        await s.submit(a, [Descriptor(Opcode.COPY, SIZE, ctx.data + i * SIZE, ctx.data + half + i * SIZE, i)
                           for i in range(per_adi)])
    await Timer(2000, unit="ns")
    s.ep.reset_stats()
    await s.bar0.write(Bar0.PF_CTRL, Bar0.PF_CTRL.pack(enable=1))
    t0 = float(get_sim_time("ns"))
    items = [(a, i) for a in adis for i in range(per_adi)]
    await s.wait_records(items, poll_ns=500)
    await Timer(500, unit="ns")
    st = s.ep.stream_stats()
    t_end = st["tx_wr"].last_ns
    elapsed = t_end - t0
    cycles = round(elapsed / CLK_NS)
    total = SIZE * len(items)
    eff = total / elapsed / LIMIT_GBPS
    # checks: the data arrived and nothing failed
    await s.check(adis)
    ops = len(items)
    cpl, wr, rd = st["rx_cpl"], st["tx_wr"], st["tx_rd"]
    data_beats = total // BEAT_BYTES
    desc_beats = ops  # one 32-byte descriptor per completion beat
    rd_lat = s.ep.rd_latencies_ns
    first_cpl = (cpl.first_ns - t0) if cpl.first_ns is not None else 0.0
    wr_record_beats = ops  # 16-byte record: one beat each (no INTR flag: no IMS message)
    link_bytes_up = wr.payload_bytes + wr.header_bytes + LINK_FRAMING * wr.frames
    link_bytes_down = cpl.payload_bytes + cpl.header_bytes + LINK_FRAMING * cpl.frames
    r = {
        "adis": n_adis,
        "copies": ops,
        "bytes": total,
        "elapsed_ns": round(elapsed, 1),
        "cycles": cycles,
        "ideal_cycles": data_beats,
        "bandwidth_GBps": round(total / elapsed, 3),
        "efficiency": round(eff, 4),
        "rx_cpl": {
            **_stream_summary(cpl, cycles),
            "data_beats_ideal": data_beats,
            "descriptor_beats": desc_beats,
            "partial_beat_overhead": max(0, cpl.beats - data_beats - desc_beats),
        },
        "tx_wr": {**_stream_summary(wr, cycles), "data_beats_ideal": data_beats,
                  "record_beats": wr_record_beats,
                  "partial_beat_overhead": max(0, wr.beats - wr_record_beats - data_beats)},
        "tx_rd": {**_stream_summary(rd, cycles), "descriptor_mrds": ops, "data_mrds": rd.frames - ops},
        "read_latency_ns": {"min": min(rd_lat, default=0.0), "mean": round(statistics.fmean(rd_lat), 1)
                            if rd_lat else 0.0, "max": max(rd_lat, default=0.0)},
        "startup_ns": round(first_cpl, 1),
        "tail_ns": round(t_end - cpl.last_ns, 1) if cpl.last_ns is not None else 0.0,
        "link_estimate": {
            "framing_bytes_per_tlp": LINK_FRAMING,
            "up_bytes": link_bytes_up, "down_bytes": link_bytes_down,
            "payload_fraction_down": round(total / link_bytes_down, 4) if link_bytes_down else 0.0,
            "payload_fraction_up": round(total / link_bytes_up, 4) if link_bytes_up else 0.0,
        },
    }
    rcs = r["rx_cpl"]
    r["loss_breakdown"] = {  # fractions of all cycles of the bottleneck stream (rx_cpl)
        "idle_read_latency": round(rcs["idle_cycles"] / cycles, 4),
        "descriptor_fetch": round(desc_beats / cycles, 4),
        "partial_beats": round(rcs["partial_beat_overhead"] / cycles, 4),
        "rtl_not_ready": round(rcs["stall_cycles"] / cycles, 4),
        "startup_ns": r["startup_ns"], "tail_ns": r["tail_ns"],
    }
    log.info("%d ADIs: %d B in %.1f ns = %.3f GB/s = %.1f %% of 8 GB/s", n_adis, total, elapsed,
             total / elapsed, 100 * eff)
    return r


@cocotb.test(timeout_time=1000, timeout_unit="ms")
async def dma_bandwidth(dut: Any) -> None:
    from tests.system.adi_sys import AdiSystem

    s = AdiSystem(dut)
    await s.start()
    results = []
    first = 0
    for n, per in CASES:
        results.append(await _run_case(s, n, per, first))
        first += n
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"limit_GBps": LIMIT_GBPS, "copy_bytes": SIZE, "clock_MHz": 1000 / CLK_NS,
                               "data_width": 8 * BEAT_BYTES, "cases": results}, indent=2) + "\n")


def _table(data: dict[str, Any]) -> str:
    lines = [
        f"4 KiB COPY bandwidth, fraction of {data['limit_GBps']:.0f} GB/s "
        f"({data['data_width']} bit x {data['clock_MHz']:.0f} MHz)",
        f"{'ADIs':>4} {'copies':>6} {'GB/s':>6} {'eff':>6} | {'rx_cpl util':>11} {'idle':>6} {'stall':>6} "
        f"{'desc':>5} {'partial':>7} | {'tx_wr util':>10} {'rec':>4} | {'rd lat ns':>15} {'start ns':>8} "
        f"{'tail ns':>7} | {'link payload dn/up':>18}",
    ]
    for c in data["cases"]:
        rc, wr, lat, le = c["rx_cpl"], c["tx_wr"], c["read_latency_ns"], c["link_estimate"]
        lines.append(
            f"{c['adis']:>4} {c['copies']:>6} {c['bandwidth_GBps']:>6.2f} {100 * c['efficiency']:>5.1f}% | "
            f"{100 * rc['utilization']:>10.1f}% {rc['idle_cycles']:>6} {rc['stall_cycles']:>6} "
            f"{rc['descriptor_beats']:>5} {rc['partial_beat_overhead']:>7} | {100 * wr['utilization']:>9.1f}% "
            f"{wr['record_beats']:>4} | {lat['min']:>4.0f}/{lat['mean']:>5.0f}/{lat['max']:>4.0f} "
            f"{c['startup_ns']:>8.0f} {c['tail_ns']:>7.0f} | "
            f"{100 * le['payload_fraction_down']:>8.1f}%/{100 * le['payload_fraction_up']:>5.1f}%"
        )
    for c in data["cases"]:
        lb = c["loss_breakdown"]
        lines.append(f"{c['adis']:>4} ADIs: {100 * c['efficiency']:.1f} % data; lost: read latency/idle "
                     f"{100 * lb['idle_read_latency']:.1f} % (of which start-up {lb['startup_ns']:.0f} ns, "
                     f"tail {lb['tail_ns']:.0f} ns), descriptor fetch {100 * lb['descriptor_fetch']:.1f} %, "
                     f"partial beats {100 * lb['partial_beats']:.1f} %, RTL not ready "
                     f"{100 * lb['rtl_not_ready']:.1f} %")
    lines.append("rx_cpl: cycles = beats (data + descriptor + partial-beat) + idle (nothing to deliver: read "
                 "latency) + stall (RTL not ready); rd lat = MRd out -> first completion back (min/mean/max); "
                 "link payload = payload / (payload + header + prefix + 8 B framing) per direction")
    return "\n".join(lines)


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    from siov_sim.tb.runner import run_rtl

    t0 = time.monotonic()
    run_rtl("ep_top", test_module="tests.bench.bench_dma", testcase="dma_bandwidth",
            parameters={"NumAdi": NUM_ADI})
    data = json.loads(OUT.read_text())
    sys.stdout.write(_table(data) + "\n")
    sys.stdout.write(f"(written to {OUT}; wall {time.monotonic() - t0:.1f} s incl. build)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
