"""PasidTlp: prefixes survive pack/unpack, copies and the cocotbext-pcie receive-side copy."""

from __future__ import annotations

import pytest
from cocotbext.pcie.core import port as pcie_port
from cocotbext.pcie.core.tlp import Tlp, TlpType
from cocotbext.pcie.core.utils import PcieId

from siov_sim.tb.pcie.pasid_tlp import PasidTlp, install

pytestmark = pytest.mark.system


def _mwr(pasid: int | None) -> PasidTlp:
    t = PasidTlp()
    t.fmt_type = TlpType.MEM_WRITE_64
    t.address = 0x1_2345_6780
    t.requester_id = PcieId(1, 0, 0)
    t.first_be = 0xF
    t.last_be = 0xF
    t.data = bytearray(range(8))
    t.length = 2
    if pasid is not None:
        t.set_pasid(pasid, pmr=True)
    return t


def test_pack_puts_the_prefix_in_front_and_unpack_restores_it() -> None:
    t = _mwr(0xABCDE)
    wire = t.pack()
    assert wire[:4] == bytes.fromhex("918abcde")
    back = PasidTlp.unpack(wire)
    assert back.pasid == 0xABCDE and back.pmr and not back.er
    assert back == t
    assert t.get_wire_size() == Tlp(t).get_wire_size() + 4


def test_copy_keeps_prefixes_and_th_and_plain_tlp_copy_drops_them() -> None:
    t = _mwr(0x42)
    t.th = True
    c = PasidTlp(t)
    assert c.pasid == 0x42 and c.th
    assert not hasattr(Tlp(t), "prefixes")  # the upstream behaviour this module fixes


def test_install_rebinds_the_port_copy_site() -> None:
    install()
    copied = pcie_port.Tlp(_mwr(5))
    assert isinstance(copied, PasidTlp) and copied.pasid == 5
    assert PasidTlp(_mwr(None)).pasid is None
