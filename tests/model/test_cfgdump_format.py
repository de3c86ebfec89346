from __future__ import annotations

import pytest

from siov_sim.model.pcie.cfgdump import format_lspci, parse_lspci

pytestmark = pytest.mark.model


def test_format_matches_lspci_xxxx_layout_and_round_trips() -> None:
    data = bytes(i & 0xFF for i in range(4096))
    text = format_lspci(data, "02:00.0", "Class 0880: Device 1dea:5105")
    lines = text.splitlines()
    assert lines[0] == "02:00.0 Class 0880: Device 1dea:5105"
    assert lines[1].startswith("00: 00 01 02")
    assert lines[17].startswith("100: 00 01 02")  # 3-digit offsets from 0x100 on
    assert lines[256].startswith("ff0: f0 f1")
    assert parse_lspci(text) == {"02:00.0": data}


def test_bad_sizes_and_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="4096"):
        format_lspci(bytes(100))
    with pytest.raises(ValueError, match=r"bus:device\.function"):
        format_lspci(bytes(256), "1:0.0")
