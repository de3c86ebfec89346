"""Regenerate everything derived from the SystemRDL register source ``rtl/regs/ep_regs.rdl``.

``make regs`` runs ``python -m siov_sim.tb.regs``; ``make check-gen`` then diffs the outputs:

* ``rtl/gen/ep_regs.sv``: PeakRDL-etana, ``--cpuif passthrough --default-reset rst`` (flat ports,
  Verilator and Yosys clean; ``ep_core`` adapts the one-DW register bus to the passthrough
  request/ack interface). Post-processed: DO NOT EDIT banner, ``timescale`` removed (the runner
  sets it).
* ``sw/regs/_generated/ep_regs.py``: a small generated map (register offsets, fields, resets,
  descriptions) built on ``sw/regs/base.py``. Chosen over peakrdl-python because its output is a
  large class tree plus a runtime library per access, while ``sw/`` only needs offsets, field
  packing and an async read/write through ``HostBus`` (``sw/regs/__init__.py``).
* ``docs/datasheet.md``: the register tables between the ``GENERATED`` markers (own generator
  from the compiled RDL; arrays folded to one row with base and stride, unlike peakrdl-markdown
  which unrolls a 4096-entry array into megabytes).
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from systemrdl.compiler import RDLCompiler
from systemrdl.node import AddressableNode, AddrmapNode, FieldNode, RegfileNode, RegNode

ROOT = Path(__file__).resolve().parent.parent
RDL = ROOT / "rtl" / "regs" / "ep_regs.rdl"
GEN_RTL = ROOT / "rtl" / "gen" / "ep_regs.sv"
GEN_PY = ROOT / "sw" / "regs" / "_generated" / "ep_regs.py"
DATASHEET = ROOT / "docs" / "datasheet.md"
BEGIN = "<!-- BEGIN GENERATED: registers (make regs; DO NOT EDIT between these markers) -->"
END = "<!-- END GENERATED: registers -->"
BANNER = "DO NOT EDIT: generated from rtl/regs/ep_regs.rdl by `make regs` (python -m siov_sim.tb.regs)"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldInfo:
    name: str
    lsb: int
    width: int
    sw: str
    reset: int | None
    desc: str


@dataclass(frozen=True)
class RegInfo:
    name: str
    offset: int
    fields: tuple[FieldInfo, ...]
    desc: str


@dataclass(frozen=True)
class Block:
    """A named group of registers: offsets relative to ``base``; ``count`` copies ``stride`` apart."""

    name: str
    title: str
    base: int
    count: int
    stride: int
    regs: tuple[RegInfo, ...]
    desc: str


def _clean(text: str | None) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def _access(f: FieldNode) -> str:
    sw = str(f.get_property("sw").name)
    onwrite = f.get_property("onwrite")
    if onwrite is not None and onwrite.name == "woclr":
        return "rw1c"
    return {"rw": "rw", "r": "ro", "w": "wo"}.get(sw, sw)


def _reset(f: FieldNode) -> int | None:
    reset = f.get_property("reset")
    return reset if isinstance(reset, int) else None


def _reg_info(r: RegNode, offset: int, prefix: str = "") -> RegInfo:
    fields = tuple(
        FieldInfo(f.inst_name, f.lsb, f.width, _access(f), _reset(f), _clean(f.get_property("desc")))
        for f in r.fields()
    )
    return RegInfo(prefix + r.inst_name, offset, fields, _clean(r.get_property("desc")))


def _regs_in(node: AddrmapNode | RegfileNode, base: int, prefix: str = "") -> list[RegInfo]:
    out: list[RegInfo] = []
    for child in node.children(unroll=False):
        assert isinstance(child, AddressableNode)
        off = base + child.raw_address_offset
        if isinstance(child, RegNode):
            if child.is_array:
                raise ValueError(f"{child.get_path()}: register arrays are only allowed as blocks")
            out.append(_reg_info(child, off, prefix))
        elif isinstance(child, RegfileNode) and not child.is_array:
            out += _regs_in(child, off, f"{prefix}{child.inst_name}_")
    return out


def _array_block(name: str, title: str, node: RegfileNode | RegNode, base: int, desc: str) -> Block:
    dims = node.array_dimensions
    count = dims[0] if node.is_array and dims else 1
    stride = node.array_stride if node.is_array and node.array_stride is not None else node.size
    regs = [_reg_info(node, 0)] if isinstance(node, RegNode) else _regs_in(node, 0)
    return Block(name, title, base, count, stride, tuple(regs), desc)


def elaborate(top: str) -> AddrmapNode:
    rdlc = RDLCompiler()
    rdlc.compile_file(str(RDL))
    return rdlc.elaborate(top_def_name=top).top


def collect() -> list[Block]:
    bar0 = elaborate("ep_regs")
    globals_: list[RegInfo] = []
    blocks: list[Block] = []
    for child in bar0.children(unroll=False):
        assert isinstance(child, AddressableNode)
        off = child.raw_address_offset
        if isinstance(child, RegNode):
            globals_.append(_reg_info(child, off))
        elif isinstance(child, RegfileNode):
            globals_ += _regs_in(child, off, f"{child.inst_name}_")
        elif isinstance(child, AddrmapNode):  # external RAM-backed region holding one array
            (arr,) = list(child.children(unroll=False))
            assert isinstance(arr, (RegfileNode, RegNode))
            title = {"switch": "Embedded switch forwarding table", "adis": "ADI configuration pages"}.get(
                child.inst_name, child.inst_name
            )
            blocks.append(
                _array_block(
                    child.inst_name,
                    title,
                    arr,
                    off + arr.raw_address_offset,
                    _clean(child.get_property("desc")),
                )
            )
    first = Block("bar0", "BAR0 PF registers", 0, 1, 0, tuple(globals_), _clean(bar0.get_property("desc")))
    portal = elaborate("ep_portal")
    (parr,) = list(portal.children(unroll=False))
    assert isinstance(parr, (RegfileNode, RegNode))
    blocks.append(_array_block("portal", "BAR2 portal page", parr, 0, _clean(portal.get_property("desc"))))
    return [first, *blocks]


# ---------------------------------------------------------------------------------------- RTL


def gen_rtl() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "peakrdl",
                "etana",
                str(RDL),
                "-t",
                "ep_regs",
                "--cpuif",
                "passthrough",
                "--default-reset",
                "rst",
                "-o",
                tmp,
            ],
            check=True,
        )
        text = (Path(tmp) / "ep_regs.sv").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("`timescale")) + "\n"
    GEN_RTL.parent.mkdir(parents=True, exist_ok=True)
    GEN_RTL.write_text(f"// {BANNER}\n{text}")


# ------------------------------------------------------------------------------------- Python


def _pyname(name: str) -> str:
    return name.upper()


def _reg_py(r: RegInfo, indent: str) -> str:
    fields = "".join(
        f"{indent}        Field({f.name!r}, {f.lsb}, {f.width}, {f.sw!r}, {f.reset!r}, {f.desc!r}),\n" for f in r.fields
    )
    return (
        f"{indent}{_pyname(r.name)}: Final[Reg] = Reg(\n{indent}    {r.name!r}, 0x{r.offset:05X}, (\n"
        f"{fields}{indent}    ),\n{indent}    {r.desc!r},\n{indent})\n"
    )


def gen_python(blocks: list[Block]) -> None:
    cls = {"bar0": "Bar0", "switch": "SwitchFwd", "adis": "AdiPage", "portal": "PortalPage"}
    out = [
        f'"""{BANNER}."""\n\n',
        "from __future__ import annotations\n\n",
        "from typing import Final\n\n",
        "from siov_sim.sw.regs.base import Field, Reg\n\n",
    ]
    for b in blocks:
        if b.count > 1:
            out.append(f"{b.name.upper()}_BASE: Final[int] = 0x{b.base:05X}\n")
            out.append(f"{b.name.upper()}_STRIDE: Final[int] = 0x{b.stride:X}\n")
            out.append(f"{b.name.upper()}_COUNT_MAX: Final[int] = {b.count}\n")
    for b in blocks:
        rel = " (offsets relative to one page/entry)" if b.count > 1 else ""
        out.append(f'\n\nclass {cls[b.name]}:\n    """{b.title}{rel}."""\n\n')
        out += [_reg_py(r, "    ") for r in b.regs]
        out.append(f"\n    ALL: Final[tuple[Reg, ...]] = ({', '.join(_pyname(r.name) for r in b.regs)},)\n")
    GEN_PY.parent.mkdir(parents=True, exist_ok=True)
    (GEN_PY.parent / "__init__.py").write_text(f'"""{BANNER}."""\n')
    GEN_PY.write_text("".join(out))


# --------------------------------------------------------------------------------------- docs


def _bits(f: FieldInfo) -> str:
    return f"{f.lsb}" if f.width == 1 else f"{f.lsb + f.width - 1}:{f.lsb}"


def gen_markdown(blocks: list[Block]) -> str:
    lines = [BEGIN, "", f"_{BANNER}._", ""]
    for b in blocks:
        lines.append(f"### {b.title}")
        lines.append("")
        if b.count > 1:
            lines.append(
                f"{b.desc} {b.count} copies (at most; `NumAdi` are implemented) at "
                f"`0x{b.base:05X} + n * 0x{b.stride:X}`; offsets below are relative to one copy."
            )
        else:
            lines.append(b.desc)
        lines += [
            "",
            "| offset | register | bits | field | access | reset | description |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in b.regs:
            lines.append(f"| 0x{r.offset:05X} | **{r.name}** | | | | | {r.desc} |")
            for f in sorted(r.fields, key=lambda x: -x.lsb):
                reset = "—" if f.reset is None else f"0x{f.reset:X}"
                lines.append(f"| | | {_bits(f)} | {f.name} | {f.sw} | {reset} | {f.desc} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def gen_docs(blocks: list[Block]) -> None:
    md = gen_markdown(blocks)
    text = DATASHEET.read_text() if DATASHEET.exists() else f"# Datasheet\n\n## Registers\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        raise ValueError(f"{DATASHEET}: generated-section markers missing")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DATASHEET.write_text(head + md + tail)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    blocks = collect()
    gen_rtl()
    gen_python(blocks)
    gen_docs(blocks)
    log.info(
        "regs: wrote %s, %s, %s",
        GEN_RTL.relative_to(ROOT),
        GEN_PY.relative_to(ROOT),
        DATASHEET.relative_to(ROOT),
    )


if __name__ == "__main__":
    main()
