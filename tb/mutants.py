"""`make mutants`: does the regression notice a bug? Plant each one and see which test catches it.

Every planted bug is an ``ifdef MUTANT_<NAME>`` in ``rtl/`` (a realistic slip: a mask ignored, an
off-by-one, a pointer that never moves, the wrong index). Off by default: lint, synthesis and
every normal build see the correct RTL. For each mutant this runs the tests of ``make test`` that
are meant to catch it, with ``SIOV_RTL_DEFINES=MUTANT_<NAME>`` (``tb/runner.py`` adds the define to
every build and keys the build on it), stops at the first failing test and records which test
caught it and how long it took. A control run without any mutant first proves that those tests
pass on the real RTL, so a "caught" means the bug, not a broken test.

    python -m siov_sim.tb.mutants [NAME ...] [--list]

Writes ``build/mutants.json`` and prints a table; exits 1 if any mutant survives.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "mutants.json"


@dataclass(frozen=True)
class Mutant:
    name: str
    where: str
    what: str
    tests: tuple[str, ...]  # pytest node ids of `make test`, cheapest first


MUTANTS = (
    Mutant("MSIX_IGNORES_MASK", "rtl/core/ep_msix.sv", "a masked MSI-X vector is still sent",
           ("tests/rtl/test_ep_msix.py",)),
    Mutant("MSIX_IGNORES_BME", "rtl/core/ep_msix.sv", "MSI-X sent while Bus Master Enable is clear",
           ("tests/rtl/test_ep_msix.py", "tests/rtl/test_ep_core.py")),
    Mutant("SWITCH_IGNORES_VALID", "rtl/adi/ep_adi_switch.sv", "a cleared forwarding entry still forwards",
           ("tests/rtl/test_ep_adi_switch.py", "tests/rtl/test_ep_adi.py")),
    Mutant("SWITCH_NO_RANGE_CHECK", "rtl/adi/ep_adi_switch.sv",
           "a switch address >= NumAdi aliases a valid entry (SEND to a port that does not exist lands)",
           ("tests/rtl/test_ep_adi_switch.py", "tests/rtl/test_ep_adi.py")),
    Mutant("FIFO_OVERFLOW", "rtl/prim/ep_fifo.sv", "full test off by one: a full FIFO takes one more word",
           ("tests/rtl/test_ep_fifo.py",)),
    Mutant("ARB_FIXED_PRIORITY", "rtl/prim/ep_rr_arb.sv",
           "round-robin pointer never moves: requester 0 starves the others",
           ("tests/rtl/test_ep_rr_arb.py", "tests/rtl/test_ep_adi.py")),
    Mutant("WR_PASID_FROM_RD_CTX", "rtl/adi/ep_adi_engine.sv",
           "a DMA write carries the PASID of the context the read arbiter points at (copy-paste index)",
           ("tests/rtl/test_ep_adi.py", "tests/system/test_adi_traffic.py")),
    Mutant("CPL_CREDIT_LEAK", "rtl/dma/ep_dma_rd.sv",
           "a retiring read tag never returns its unused completion credits (reads stall once they leak)",
           ("tests/rtl/test_ep_dma_rd.py", "tests/rtl/test_ep_dma.py")),
    Mutant("CPL_CREDIT_TWICE", "rtl/dma/ep_dma_rd.sv",
           "an error completion streaming in when its tag retires returns its credits twice, the second "
           "time out of the reissued tag's reservation (BUGS.md #6)",
           ("tests/rtl/test_ep_dma_rd.py",)),
    Mutant("WR_SPLIT_OFF_BY_ONE", "rtl/dma/ep_dma_wr.sv",
           "write split off by one DW: a MWr runs past its MPS / 4 KiB boundary",
           ("tests/rtl/test_ep_dma_wr.py",)),
    Mutant("BME_IGNORED", "rtl/pcie/ep_cfg_space.sv", "Bus Master Enable ignored: DMA and MSI-X with BME clear",
           ("tests/rtl/test_ep_cfg_space.py", "tests/system/test_adi_lifecycle.py")),
    Mutant("TX_ORDER_BYPASS", "rtl/pcie/ep_tx_order.sv",
           "ordering gate open: a completion or DMA read passes a posted write presented before it",
           ("tests/rtl/test_ep_tx_order.py", "tests/system/test_tx_ordering.py")),
    Mutant("PTILE_NO_CREDIT_GATE", "rtl/hip/ep_ptile_top.sv",
           "P-tile wrapper starts TX frames without link credits (tx_cdts_limit ignored)",
           ("tests/system/test_ptile.py::test_ptile_wrapper",)),
    Mutant("STALE_HEAD", "rtl/adi/ep_adi_state.sv",
           "descriptor head not advanced: the same descriptor is fetched again",
           ("tests/rtl/test_ep_adi_state.py", "tests/rtl/test_ep_adi.py")),
    Mutant("QUIESCE_KEEPS_FETCHING", "rtl/adi/ep_adi_state.sv",
           "QUIESCE with a descriptor in flight leaves the ADI ENABLED: it fetches on (no-DMA assertion)",
           ("tests/rtl/test_ep_adi_state.py",)),
)


def _pytest(tests: tuple[str, ...], defines: str, jobs: str) -> tuple[int, str, float]:
    env = {**os.environ, "SIOV_RTL_DEFINES": defines}
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-rf", "-p", "no:cacheprovider", "-n", jobs, *tests]
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return r.returncode, r.stdout + r.stderr, time.monotonic() - t0


def _first_failure(text: str) -> str:
    m = re.search(r"^FAILED (\S+)", text, re.M)
    return m.group(1) if m else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="mutants to run (default: all)")
    ap.add_argument("--list", action="store_true", help="list the planted bugs and exit")
    ap.add_argument("-n", "--jobs", default="2", help="pytest-xdist workers per run")
    args = ap.parse_args()
    known = {m.name: m for m in MUTANTS}
    bad = [n for n in args.names if n not in known]
    if bad:
        sys.stderr.write(f"make mutants: unknown mutant(s) {', '.join(bad)}; --list shows them\n")
        return 2
    chosen = [known[n] for n in args.names] if args.names else list(MUTANTS)
    if args.list:
        for m in chosen:
            print(f"MUTANT_{m.name:24} {m.where:28} {m.what}")
        return 0
    for m in chosen:  # every define must exist in the RTL, or the "mutant" would be the real RTL
        if f"MUTANT_{m.name}" not in (ROOT / m.where).read_text():
            sys.stderr.write(f"make mutants: MUTANT_{m.name} is not planted in {m.where}\n")
            return 2
    tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
    print(f"control: {len(tests)} test files on the real RTL ...", flush=True)
    rc, text, secs = _pytest(tests, "", args.jobs)
    if rc != 0:
        sys.stdout.write(text[-4000:])
        sys.stderr.write("make mutants: the tests fail on the real RTL; fix that first\n")
        return 2
    control_secs = secs
    print(f"control: passed in {secs:.0f} s", flush=True)
    rows = []
    for m in chosen:
        rc, text, secs = _pytest(m.tests, f"MUTANT_{m.name}", args.jobs)
        caught = rc != 0
        row = {"mutant": m.name, "where": m.where, "what": m.what, "caught": caught,
               "caught_by": _first_failure(text) if caught else None, "seconds": round(secs, 1)}
        if rc not in (0, 1):  # not a test failure: a build error or a crash of pytest itself
            row["note"] = f"pytest exit {rc}: " + " ".join(text.strip().splitlines()[-1:])[:200]
        rows.append(row)
        print(f"  MUTANT_{m.name:24} {'caught' if caught else 'SURVIVED':8} {secs:6.0f} s  "
              f"{row['caught_by'] or ''}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"control_seconds": round(control_secs, 1), "mutants": rows}, indent=1) + "\n")
    survived = [r["mutant"] for r in rows if not r["caught"]]
    print(f"\n{len(rows) - len(survived)} of {len(rows)} planted bugs caught"
          + (f"; survived: {', '.join(survived)}" if survived else "") + f" (written {OUT})")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
