"""Functional coverage with cocotb-coverage (its database is the one global the project allows).

Cover points sampled by the link adapter (every TLP that crosses the endpoint's link) and by
tests (ADI operations, errors). Each simulator process exports its database to
``build/cov/<module>-<pid>.yml`` when it exits; ``make cov`` merges them
(``tb/coverage_merge.py``) and prints the coverage per item.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

TLP_KINDS = ["cfg_rd0", "cfg_wr0", "cfg_rd1", "cfg_wr1", "mem_rd", "mem_wr", "io", "cpl", "cpl_data", "msg", "other"]
_KIND_BY_FMT_TYPE = {
    (0b000, 0b00100): "cfg_rd0", (0b010, 0b00100): "cfg_wr0",
    (0b000, 0b00101): "cfg_rd1", (0b010, 0b00101): "cfg_wr1",
    (0b000, 0b00000): "mem_rd", (0b001, 0b00000): "mem_rd",
    (0b010, 0b00000): "mem_wr", (0b011, 0b00000): "mem_wr",
    (0b000, 0b00010): "io", (0b010, 0b00010): "io",
    (0b000, 0b01010): "cpl", (0b010, 0b01010): "cpl_data",
}


def tlp_kind(fmt: int, typ: int) -> str:
    if typ >> 3 == 0b10:
        return "msg"
    return _KIND_BY_FMT_TYPE.get((fmt, typ), "other")


@CoverPoint("link.tlp.kind", xf=lambda d, k, p, s: (d, k), bins=[
    ("down", k) for k in ("cfg_rd0", "cfg_wr0", "mem_rd", "mem_wr", "cpl_data", "cpl")
] + [("up", k) for k in ("mem_rd", "mem_wr", "cpl", "cpl_data")])
# every ADI request carries its PASID (ENABLE without one is refused), the endpoint's own writes
# (MSI-X, IMS) carry none, and the endpoint has no PASID-less reads: no ("up", "mem_rd", False) bin
@CoverPoint("link.tlp.pasid", xf=lambda d, k, p, s: (d, k, p is not None), bins=[
    ("up", "mem_rd", True), ("up", "mem_wr", True), ("up", "mem_wr", False),
])
@CoverPoint("link.tlp.cpl_status", xf=lambda d, k, p, s: (d, s), bins=[
    ("up", 0), ("up", 1), ("down", 0), ("down", 1), ("down", 4)])
def sample_tlp(direction: str, kind: str, pasid: int | None, cpl_status: int | None) -> None:
    """direction 'down' = host to endpoint, 'up' = endpoint to host."""


@CoverPoint("adi.op", vname="op", bins=["COPY", "FILL", "SEND"])
@CoverPoint("adi.error", vname="error", bins=["none", "ur", "ca", "timeout", "bad_desc", "switch_denied",
                                               "ring_overflow"])
@CoverCross("adi.op_x_error", items=["adi.op", "adi.error"])
def sample_adi_op(op: str, error: str) -> None:
    """One completed (or failed) ADI operation as the scoreboard saw it."""


def _export() -> None:
    out = os.environ.get("SIOV_COV_DIR")
    if not out or not coverage_db:
        return
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    module = os.environ.get("COCOTB_TEST_MODULES", "sim").split(",")[0].rsplit(".", 1)[-1]
    coverage_db.export_to_yaml(str(path / f"{module}-{os.getpid()}.yml"))


atexit.register(_export)
