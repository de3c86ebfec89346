"""Functional coverage with cocotb-coverage (its database is the one global the project allows).

Cover points sampled by the link adapter (every TLP that crosses the endpoint's link) and by
tests (ADI operations, errors). Each simulator process exports its database to
``build/cov/<module>-<pid>.yml`` when it exits; ``make cov`` merges them
(``tb/coverage_merge.py``) and prints the coverage per item, the bins never hit and the
waivers of ``tests/cov_waivers.txt`` (``func <item> <bin> <reason>``).

| item | what | sampled by |
|---|---|---|
| ``link.tlp.*`` | TLP kinds, PASID prefix, completion status per direction | link adapters (both links) |
| ``adi.op_x_error`` | descriptor op x error code of every completion record | scoreboard |
| ``adi.cmd_x_state`` | ENABLE/DRAIN/RESET/QUIESCE/ABORT/doorbell x the ADI's state when it arrives | scoreboard |
| ``iommu.xlate`` | translation type (PGTT) x page size x read/write of DMA at the link | root complexes |
| ``iommu.fault`` | fault reason of a DMA request blocked at the link | root complexes |
| ``vdev.lifecycle`` | VDEV transition x driver kind (avf, pmd, sva) | the random regression |
| ``irq.path`` | IMS sent / held pending / released, MSI-X and its blockers, BME off | scoreboard, MSI-X test |
| ``link.cpl`` | DMA-read completions: whole, split (RCB), reordered, poisoned, error status | accurate link |
| ``link.backpressure`` | each stream stalled by the other side; source streams with gaps | accurate link |
| ``migration.outcome`` | live migration done, or cancelled in pre-copy / stop-and-copy | ``tb/migrate.py`` |

Hot paths sample through :func:`once` (a set lookup; cocotb-coverage only on a bin's first hit):
coverage counts bins hit, not how often.
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


ADI_STATES = ["DISABLED", "ENABLED", "ERROR", "DRAINING"]
#: BAR0 ``cmd`` values (datasheet section 2; 4 = QUIESCE, migration; 5 = ABORT) and the portal doorbell
ADI_CMDS = ["ENABLE", "DRAIN", "RESET", "QUIESCE", "ABORT", "DOORBELL"]


@CoverPoint("adi.cmd_x_state", xf=lambda c, s: (c, s), bins=[(c, s) for c in ADI_CMDS for s in ADI_STATES])
def sample_adi_cmd(cmd: str, state: str) -> None:
    """A command (or a doorbell) reached an ADI in ``state`` (the golden model's, checked against
    the RTL's STATUS by the scoreboard)."""


XLATE_TYPES = ["FIRST_STAGE", "SECOND_STAGE", "NESTED", "PASS_THROUGH"]
PAGE_SIZES = ["4K", "2M", "1G"]
#: fault reasons a device's DMA can raise at the link when software set the tables up right (the
#: rest -- unreadable or reserved table entries -- need corrupted tables: tests/model/iommu covers them)
LINK_FAULTS = ["SPT_2_PASID_NOT_PRESENT", "SFS_2_NOT_PRESENT", "SSS_2_NOT_PRESENT", "SGN_6_WRITE", "SGN_7_READ",
               "SPT_6_SRE", "SGN_2_USER", "IR_29_MALFORMED", "SGN_4_HAW", "SGN_5_SS_INPUT", "SGN_1_CANONICAL"]


@CoverPoint("iommu.xlate", xf=lambda t, p, w: (t, p, "wr" if w else "rd"),
            bins=[(t, p, d) for t in XLATE_TYPES for p in PAGE_SIZES for d in ("rd", "wr")])
def sample_xlate(pgtt: str, page: str, write: bool) -> None:
    """A DMA request the IOMMU translated at the link."""


@CoverPoint("iommu.fault", vname="reason", bins=LINK_FAULTS)
def sample_fault(reason: str) -> None:
    """A DMA request the IOMMU blocked at the link (fault reason name)."""


DRIVER_KINDS = ["avf", "pmd", "sva"]
VDEV_STEPS = ["create", "bind", "run", "error", "reset", "drain", "remove"]


@CoverPoint("vdev.lifecycle", xf=lambda t, k: (t, k), bins=[(t, k) for t in VDEV_STEPS for k in DRIVER_KINDS])
def sample_vdev(step: str, kind: str) -> None:
    """A VDEV went through ``step`` under a driver of ``kind``."""


IRQ_PATHS = ["ims", "ims_masked_pending", "ims_pending_released", "ims_error", "msix", "msix_masked_pending",
             "msix_pending_released", "msix_func_masked", "msix_disabled", "bme_off_held"]


@CoverPoint("irq.path", vname="path", bins=IRQ_PATHS)
def sample_irq(path: str) -> None:
    """An interrupt took ``path``."""


CPL_CASES = ["whole", "split", "reordered", "poisoned", "ur", "ca"]


@CoverPoint("link.cpl", vname="case", bins=CPL_CASES)
def sample_cpl(case: str) -> None:
    """A DMA-read completion delivered to the RTL."""


MIGRATION_OUTCOMES = ["migrated", "cancelled_precopy", "cancelled_stopcopy"]


@CoverPoint("migration.outcome", vname="outcome", bins=MIGRATION_OUTCOMES)
def sample_migration(outcome: str) -> None:
    """A live migration between the two hosts of ``tb/migrate.py`` ended this way."""


STREAMS = ["rx_req", "rx_cpl", "tx_cpl", "tx_wr", "tx_rd"]


@CoverPoint("link.backpressure", xf=lambda s, k: (s, k),
            bins=[(s, "stall") for s in STREAMS] + [(s, "gap") for s in ("rx_req", "rx_cpl")])
def sample_backpressure(stream: str, kind: str) -> None:
    """``stall``: the receiving side held ready low with valid high; ``gap``: the host's source
    dropped valid inside or between frames (accurate link)."""


_seen: set[tuple[object, ...]] = set()


def once(fn: object, *args: object) -> None:
    """Sample ``fn(*args)`` the first time this process sees these arguments (hot paths)."""
    key = (fn, *args)
    if key not in _seen:
        _seen.add(key)
        fn(*args)  # type: ignore[operator]


def page_size(shift: int) -> str:
    return {12: "4K", 21: "2M", 30: "1G"}.get(shift, f"2^{shift}")


def sample_translation(result: object, write: bool) -> None:
    """What the IOMMU made of one DMA request at the link: a ``Translation`` or a ``Fault``."""
    reason = getattr(result, "reason", None)
    if reason is not None:
        once(sample_fault, getattr(reason, "name", str(reason)))
        return
    pgtt = getattr(result, "pgtt", 0)
    if pgtt:  # 0: remapping off (no translation type to speak of)
        once(sample_xlate, XLATE_TYPES[pgtt - 1] if 1 <= pgtt <= 4 else str(pgtt),
             page_size(getattr(result, "page_shift", 12)), write)


def _export() -> None:
    out = os.environ.get("SIOV_COV_DIR")
    if not out or not coverage_db:
        return
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    module = os.environ.get("COCOTB_TEST_MODULES", "sim").split(",")[0].rsplit(".", 1)[-1]
    coverage_db.export_to_yaml(str(path / f"{module}-{os.getpid()}.yml"))


atexit.register(_export)
