"""`make cov`: merge the per-run coverage files in build/cov/ and print the result."""

from __future__ import annotations

import logging
import sys

import yaml
from cocotb_coverage.coverage import merge_coverage

from siov_sim.tb.runner import ROOT


def main() -> int:
    cov = ROOT / "build" / "cov"
    files = sorted(str(p) for p in cov.glob("*.yml") if p.name != "merged.yml")
    if not files:
        sys.stdout.write("no coverage files in build/cov: run `make test` (or make sim) first\n")
        return 1
    logging.basicConfig(level=logging.WARNING)
    merged = cov / "merged.yml"
    merge_coverage(logging.getLogger("cov").info, str(merged), *files)
    data = yaml.safe_load(merged.read_text())
    sys.stdout.write(f"merged {len(files)} files -> {merged}\n")
    for name in sorted(data):
        item = data[name]
        sys.stdout.write(f"  {name:32s} {item.get('cover_percentage', 0):6.1f} %  "
                         f"({item.get('coverage')}/{item.get('size')})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
