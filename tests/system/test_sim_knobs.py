"""`make sim` answers bad knobs with one line each, before anything is built."""

from __future__ import annotations

import subprocess
import sys

import pytest

from siov_sim.tb.runner import ROOT
from siov_sim.tb.sim import check_knobs

pytestmark = pytest.mark.sw


def test_good_knobs_pass() -> None:
    assert check_knobs(4, 4096, 16, 1) == []
    assert check_knobs(700, 4096, 2048, 1) == []
    assert check_knobs(4, 1 << 20, 16, 0) == []


@pytest.mark.parametrize(
    ("knobs", "needle"),
    [
        ((4, 4096, 5000, 1), "NUM_ADI=5000"),
        ((4, 4096, 24, 1), "NUM_ADI=24"),
        ((17, 4096, 16, 1), "VDEVS=17"),
        ((0, 4096, 16, 1), "VDEVS=0"),
        ((4, 2_000_000, 16, 1), "SIZE=2000000"),
        ((4, 6, 16, 1), "SIZE=6"),
        ((700, 1 << 20, 2048, 1), "host RAM"),
        ((4, 4096, 16, -1), "SEED=-1"),
    ],
)
def test_bad_knobs_are_named(knobs: tuple[int, int, int, int], needle: str) -> None:
    errs = check_knobs(*knobs)
    assert len(errs) == 1 and needle in errs[0], errs


@pytest.mark.parametrize("args", [["--num-adi", "5000"], ["--size", "2000000"], ["--vdevs", "abc"],
                                  ["--link", "slow"]])
def test_command_line_gives_one_line_and_builds_nothing(args: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", "siov_sim.tb.sim", *args], capture_output=True, text=True,
                       cwd=ROOT, timeout=60, check=False)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("make sim: "), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
