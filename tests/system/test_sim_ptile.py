"""`make sim HIP=ptile`: the whole `make sim` scenario through the Intel P-tile wrapper
(rtl/hip/ep_ptile_top.sv) and the extended P-tile hard-IP model, with the IOMMU root complex in
front, and the same report as on the generic link (small: 2 VDEVs, 256-byte transfers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.system


def test_make_sim_hip_ptile(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    r = subprocess.run([sys.executable, "-m", "siov_sim.tb.sim", "--hip", "ptile", "--vdevs", "2", "--size", "256",
                        "--num-adi", "8", "--seed", "3", "--sysfs", "none", "--out", str(out)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    rep = json.loads((out / "report.json").read_text())
    text = (out / "report.txt").read_text()
    # the report says which hard IP ran, and it is the same report as on the generic link
    assert rep["options"]["hip"] == "ptile" and rep["link"]["mode"] == "ptile"
    assert "Intel P-tile hard IP: ep_ptile_top" in text
    for section in ("siov-sim report", "steps", "VDEV     type", "isolation:", "vIOMMU:", "left over after removal"):
        assert section in text, section
    # config split: the IP's PASID capability, the RTL's SIOV DVSEC through CII
    caps = rep["device"]["capabilities"]
    assert any(c.startswith("[330] PASID: width 20") and c.endswith("enabled") for c in caps), caps
    assert any(c.startswith("[d00] Intel Scalable IOV DVSEC (8086:0005") for c in caps), caps
    steps = [s["step"] for s in rep["steps"]]
    assert steps[1].startswith("PF driver probed") and rep["steps"][1]["dvsec"] == "0xd00"
    # traffic, isolation (PASID-tagged DMA through tx_st_tlp_prfx to the IOMMU), clean link
    demo = rep["demo"]
    assert len(demo["vdevs"]) == 2 and all(v["ops"] > 0 and not v["errors"] for v in demo["vdevs"])
    assert demo["isolation"]["blocked"] and demo["isolation"]["victim_intact"]
    assert rep["link"]["protocol_errors"] == 0 and rep["link"]["iommu"]["dma_wr"] > 0
    assert rep["link"]["iommu"]["rd_fault"] > 0  # the blocked read carried the offender's PASID
