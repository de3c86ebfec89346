"""Live migration on the RTL: two hosts (``tb/mig/ep_mig_top.sv``: two ``ep_top`` endpoints, each
with its own root complex, VT-d IOMMU, host memory and software stack) and a VM migrated back
and forth under checked traffic at random points, some migrations first cancelled half-way.

The cocotb test is ``tb/migrate.py::migrate_demo`` (what ``make migrate`` runs); it asserts that
every descriptor completed exactly once (the guest's records and the migrated device counter),
every byte, that guest RAM is equal on both hosts at each switch-over, that every destination
delivered the VDEV's IMS interrupts, and that nothing is left allocated on either host.
``SIOV_MIGRATE_SEED`` picks the seed (printed)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from siov_sim.tb.migrate import TOP, TOP_SV, main
from siov_sim.tb.runner import run_rtl

pytestmark = pytest.mark.system


def _run(tmp_path: Path, **opts: object) -> dict[str, object]:
    seed = int(os.environ.get("SIOV_MIGRATE_SEED", "1"))
    print(f"migration seed {seed}: reproduce with SIOV_MIGRATE_SEED={seed}")
    env = {"SIOV_MIGRATE_OPTS": json.dumps({"seed": seed, **opts}), "SIOV_MIGRATE_OUT": str(tmp_path),
           "COCOTB_RANDOM_SEED": str(seed)}  # fmt: skip
    try:
        run_rtl(TOP, test_module="siov_sim.tb.migrate", testcase="migrate_demo", parameters={"NumAdi": 8},
                extra_sources=[TOP_SV], extra_env=env, test_dir=tmp_path)  # fmt: skip
    except AssertionError as exc:
        raise AssertionError(f"migration seed {seed} failed ({tmp_path / 'report.txt'})") from exc
    report: dict[str, object] = json.loads((tmp_path / "report.json").read_text())["summary"]
    return report


def test_100_migrations_back_and_forth(tmp_path: Path) -> None:
    """100 migrations of a 1-queue VDEV (small RAM, a 100 Gb/s migration link: about a minute)."""
    s = _run(tmp_path, migrations=100, type="siov-1q", ram_kib=128, size=256, gbps=100, abort_rate=0.1,
             gap_ns=[500, 3_000])  # fmt: skip
    assert s["migrations"] == 100 and s["failed"] == 0 and s["aborted"]
    assert s["completed"] == s["posted"] == s["device_completed"]
    assert s["irqs_every_dst"] and s["ram_checked"]


@pytest.mark.slow
def test_migrations_of_a_4_queue_vdev(tmp_path: Path) -> None:
    """The `make migrate` configuration, longer: 4 queues, 10 Gb/s, 40 migrations (several minutes)."""
    s = _run(tmp_path, migrations=40, type="siov-4q", ram_kib=256, size=256, gbps=10, abort_rate=0.2)
    assert s["migrations"] == 40 and s["failed"] == 0
    assert s["completed"] == s["posted"] == s["device_completed"]


def test_make_migrate_knobs_are_checked_before_anything_is_built(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["migrate", "--ram", "5", "--num-adi", "6", "--migrations", "0"])
    assert main() == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "make migrate: MIGRATIONS=0: at least 1",
        "make migrate: RAM=5: guest RAM in KiB, a multiple of 4 from 128 to 1048576",
        "make migrate: NUM_ADI=6: a power of two from 4 to 4096",
    ]
