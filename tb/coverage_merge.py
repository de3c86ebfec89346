"""`make cov` / `make cov-report`: functional coverage (build/cov/*.yml, merged) with its holes and
waivers, then RTL code coverage (build/rtlcov/*.dat, ``tb/rtlcov.py``).

Functional-coverage waivers live in ``tests/cov_waivers.txt`` next to the code-coverage ones, one
per line: ``func <item> <bin> | <reason>``, ``<bin>`` written as the report prints it (e.g.
``func adi.cmd_x_state ('DRAIN', 'DISABLED') | ...``). A waiver for a bin that is hit, or that
does not exist, is reported as an error so the list stays true. Exit status 0 only when every
bin is hit or waived and the RTL code coverage goals are met.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cocotb_coverage.coverage import merge_coverage

from siov_sim.tb import rtlcov
from siov_sim.tb.runner import ROOT


@dataclass
class FuncWaivers:
    reasons: dict[tuple[str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def read_func_waivers(path: Path = rtlcov.WAIVERS) -> FuncWaivers:
    w = FuncWaivers()
    if not path.exists():
        return w
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        if not raw.startswith("func "):
            continue
        what, sep, reason = raw[5:].partition(" | ")
        item, _, bin_ = what.strip().partition(" ")
        if not sep or not item or not bin_.strip() or not reason.strip():
            w.errors.append(f"{path.name}:{n}: want 'func <item> <bin> | <reason>', got {raw!r}")
            continue
        w.reasons[(item, bin_.strip())] = reason.strip()
    return w


def functional(stream: object = sys.stdout) -> int:
    """Merge and print the functional coverage; returns the number of problems (holes, bad waivers)."""
    w = stream.write  # type: ignore[attr-defined]
    cov = ROOT / "build" / "cov"
    files = sorted(str(p) for p in cov.glob("*.yml") if p.name != "merged.yml")
    if not files:
        w("no functional coverage files in build/cov: run `make cov` (or make test / make sim) first\n")
        return 1
    merged = cov / "merged.yml"
    merge_coverage(logging.getLogger("cov").info, str(merged), *files)
    data = yaml.safe_load(merged.read_text())
    waivers = read_func_waivers()
    problems = list(waivers.errors)
    used: set[tuple[str, str]] = set()
    holes: list[str] = []
    tot_hit = tot_size = tot_waived = 0
    w(f"functional coverage: {len(files)} files merged -> {merged.relative_to(ROOT)}\n")
    w(f"  {'item':28s} {'hit':>8s} {'waived':>7s} {'of':>5s}  {'% (waivers applied)':>20s}\n")
    for name in sorted(data):
        item = data[name]
        bins = item.get("bins:_hits")
        if bins is None:
            continue  # a group (prefix), not a cover point or cross
        hit = sum(1 for v in bins.values() if v)
        waived = 0
        for b, v in bins.items():
            key = (name, str(b))
            if key in waivers.reasons:
                used.add(key)
                if v:
                    problems.append(f"waiver func {name} {b}: the bin is hit ({v}), drop the waiver")
                else:
                    waived += 1
            elif not v:
                holes.append(f"{name} {b}")
        size = len(bins)
        tot_hit, tot_size, tot_waived = tot_hit + hit, tot_size + size, tot_waived + waived
        pct = 100.0 * (hit + waived) / size if size else 100.0
        w(f"  {name:28s} {hit:8d} {waived:7d} {size:5d}  {pct:19.1f} %\n")
    for key in set(waivers.reasons) - used:
        problems.append(f"waiver func {key[0]} {key[1]}: no such bin")
    pct = 100.0 * (tot_hit + tot_waived) / tot_size if tot_size else 100.0
    w(f"  {'total':28s} {tot_hit:8d} {tot_waived:7d} {tot_size:5d}  {pct:19.1f} %   goal 100 % hit or waived\n")
    if holes:
        w(f"  holes (not hit, not waived): {len(holes)}\n")
        for h in holes:
            w(f"    {h}\n")
    for p in problems:
        w(f"  WAIVER ERROR {p}\n")
    return len(holes) + len(problems)


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    bad = functional()
    sys.stdout.write("\n")
    if any(rtlcov.RTLCOV_DIR.glob("*.dat")):
        bad += rtlcov.report()
    else:
        sys.stdout.write("RTL code coverage: no data in build/rtlcov (only `make cov` builds with coverage)\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
