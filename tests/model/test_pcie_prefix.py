from __future__ import annotations

import pytest

from siov_sim.model.pcie.prefix import (
    PasidPrefix,
    PrefixError,
    find_pasid,
    is_prefix_dw,
    split_prefixes,
)

pytestmark = pytest.mark.model


def test_pasid_prefix_wire_bytes_match_the_spec_example() -> None:
    # PASID 0xABCDE with PMR=1 -> 91 8A BC DE (siov.md)
    assert PasidPrefix(0xABCDE, pmr=True).to_bytes() == bytes.fromhex("918abcde")
    assert PasidPrefix(0x42, er=True).pack() == 0x91400042


@pytest.mark.parametrize("pasid", [0, 1, 0x42, 0x80000, 0xFFFFF])
@pytest.mark.parametrize("pmr", [False, True])
@pytest.mark.parametrize("er", [False, True])
def test_pack_unpack_round_trip(pasid: int, pmr: bool, er: bool) -> None:
    p = PasidPrefix(pasid, pmr, er)
    assert PasidPrefix.unpack(p.pack()) == p
    assert is_prefix_dw(p.pack())


def test_bad_prefixes_are_rejected_with_a_clear_error() -> None:
    with pytest.raises(PrefixError, match="20 bits"):
        PasidPrefix(1 << 20)
    with pytest.raises(PrefixError, match="not a PASID prefix"):
        PasidPrefix.unpack(0x90000042)  # ExtTPH, not PASID
    two = [PasidPrefix(1).pack(), PasidPrefix(2).pack()]
    with pytest.raises(PrefixError, match="more than one PASID"):
        find_pasid(two)
    with pytest.raises(PrefixError, match="more than 4"):
        split_prefixes(PasidPrefix(1).to_bytes() * 5 + bytes(12))


def test_split_prefixes_stops_at_the_header() -> None:
    hdr = bytes.fromhex("40000001") + bytes(8)  # MWr 3DW, length 1: Fmt 010b is no prefix
    prefixes, rest = split_prefixes(PasidPrefix(7).to_bytes() + hdr)
    assert prefixes == [0x91000007]
    assert rest == hdr
    assert split_prefixes(hdr) == ([], hdr)
