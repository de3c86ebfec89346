"""`make cfgdump` output decoded by the real `lspci -F FILE -vvv` (Debian pciutils)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from siov_sim.model.pcie.cfgdump import parse_lspci
from siov_sim.tb import debdeps
from siov_sim.tb.cfgdump import run

pytestmark = pytest.mark.system


def _lspci() -> str:
    left = debdeps.ensure(["pciutils"], quiet=True)  # CI and developer machines: root with apt
    path = shutil.which("lspci")
    if left or path is None:
        pytest.skip("lspci (Debian package pciutils) is not installed and apt-get could not install it")
    return path


def test_lspci_decodes_the_rtl_config_space(tmp_path: Path) -> None:
    lspci = _lspci()
    dump = run(tmp_path / "cfgdump.txt")
    text = dump.read_text()
    ((_bdf, data),) = parse_lspci(text).items()
    assert len(data) == 4096
    out = subprocess.run([lspci, "-F", str(dump), "-vvv"], capture_output=True, text=True, check=True).stdout
    # both 64-bit BARs assigned
    bars = re.findall(r"Region (\d): Memory at ([0-9a-f]+) \(64-bit, (?:non-)?prefetchable\)", out)
    assert [b[0] for b in bars] == ["0", "2"], out
    # PCIe capability: endpoint, End-End TLP prefix supported, one prefix
    assert re.search(r"Express \(v2\) Endpoint", out), out
    assert "EETLPPrefix+" in out, out
    assert re.search(r"EETLPPrefix\+, MaxEETLPPrefixes 1", out), out
    # Function Level Reset capability
    assert re.search(r"RBE\+ FLReset\+", out), out
    # Advanced Error Reporting: capability, default severity (Malformed TLP fatal), ANFE masked
    assert re.search(r"Capabilities: \[140 v2\] Advanced Error Reporting", out), out
    assert re.search(r"UESvrt:.*MalfTLP\+", out), out
    assert re.search(r"CEMsk:.*AdvNonFatalErr\+", out), out
    # MSI-X with the table and PBA in BAR0, enabled by the probe
    assert re.search(r"MSI-X: Enable\+ Count=8 Masked-", out), out
    assert re.search(r"Vector table: BAR=0 offset=00002000", out), out
    assert re.search(r"PBA: BAR=0 offset=00003000", out), out
    # PASID capability
    assert re.search(r"Process Address Space ID \(PASID\)", out), out
    assert re.search(r"PASIDCap: Exec- Priv\+, Max PASID Width: 14", out), out
    # Intel Scalable IOV DVSEC
    assert re.search(r"Designated Vendor-Specific: Vendor=8086 ID=0005 Rev=0 Len=24", out), out


def test_lspci_decodes_the_ptile_config_space(tmp_path: Path) -> None:
    """`make cfgdump HIP=ptile`: the IP's config space with the RTL's SIOV DVSEC at 0xD00 (CII)."""
    lspci = _lspci()
    dump = run(tmp_path / "cfgdump.txt", {"NumAdi": 8}, hip="ptile")
    out = subprocess.run([lspci, "-F", str(dump), "-vvv"], capture_output=True, text=True, check=True).stdout
    bars = re.findall(r"Region (\d): Memory at ([0-9a-f]+) \(64-bit, (?:non-)?prefetchable\)", out)
    assert [b[0] for b in bars] == ["0", "2"], out
    assert re.search(r"Express \(v2\) Endpoint", out), out
    assert re.search(r"EETLPPrefix\+, MaxEETLPPrefixes 1", out), out
    assert re.search(r"MSI-X: Enable\+ Count=8 Masked-", out), out
    assert re.search(r"Vector table: BAR=0 offset=00002000", out), out
    assert re.search(r"Capabilities: \[100 v2\] Advanced Error Reporting", out), out
    assert re.search(r"Capabilities: \[330 v1\] Process Address Space ID \(PASID\)", out), out
    assert re.search(r"PASIDCap: Exec- Priv\+, Max PASID Width: 14", out), out
    # the DVSEC is served by the RTL through CII and ends the capability chain
    assert re.search(r"Capabilities: \[d00 v1\] Designated Vendor-Specific: Vendor=8086 ID=0005 Rev=0 Len=24", out), out
