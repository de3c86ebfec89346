"""A cocotbext-pcie TLP that carries End-End TLP prefixes (PASID) across every port hop.

cocotbext-pcie 0.2.16 copies each TLP on reception with ``Tlp(pkt)`` (``core/port.py``), which
builds the base class and drops anything a subclass carried, and its ``pack``/``unpack`` know no
prefixes. :class:`PasidTlp` keeps a ``prefixes`` list (copied by the constructor, packed in front
of the header, counted in the wire size) and :func:`install` makes the port's receive-side copy
build a ``PasidTlp``, so a PASID put on a TLP by the endpoint reaches the root complex's IOMMU.
Completions never carry a PASID (``Tlp.create_*completion*`` builds plain ``Tlp`` objects).
"""

from __future__ import annotations

from typing import Any

from cocotbext.pcie.core import port as _port
from cocotbext.pcie.core.tlp import Tlp

from siov_sim.model.pcie.prefix import PasidPrefix, find_pasid, split_prefixes


class PasidTlp(Tlp):  # type: ignore[misc]
    def __init__(self, tlp: Tlp | None = None) -> None:
        super().__init__(tlp)
        self.prefixes: list[int] = []
        if isinstance(tlp, Tlp):
            self.th = tlp.th  # the upstream copy constructor forgets TH
            self.prefixes = list(getattr(tlp, "prefixes", ()))

    # -- PASID view of the prefix list ------------------------------------------------------
    @property
    def pasid_prefix(self) -> PasidPrefix | None:
        return find_pasid(self.prefixes)

    @property
    def pasid_present(self) -> bool:
        return self.pasid_prefix is not None

    @property
    def pasid(self) -> int | None:
        p = self.pasid_prefix
        return None if p is None else p.pasid

    @property
    def pmr(self) -> bool:
        p = self.pasid_prefix
        return False if p is None else p.pmr

    @property
    def er(self) -> bool:
        p = self.pasid_prefix
        return False if p is None else p.er

    def set_pasid(self, pasid: int, pmr: bool = False, er: bool = False) -> None:
        self.clear_pasid()
        self.prefixes.append(PasidPrefix(pasid, pmr, er).pack())

    def clear_pasid(self) -> None:
        self.prefixes = [dw for dw in self.prefixes if (dw >> 24) != 0x91]

    # -- wire format ------------------------------------------------------------------------
    def get_wire_size(self) -> int:
        return int(super().get_wire_size()) + 4 * len(self.prefixes)

    def pack_prefixes(self) -> bytes:
        return b"".join(dw.to_bytes(4, "big") for dw in self.prefixes)

    def pack(self) -> bytearray:
        return bytearray(self.pack_prefixes()) + bytearray(super().pack())

    @classmethod
    def unpack(cls, pkt: bytes) -> PasidTlp:
        prefixes, rest = split_prefixes(bytes(pkt))
        tlp: PasidTlp = super().unpack(bytearray(rest))
        tlp.prefixes = prefixes
        return tlp

    def __eq__(self, other: Any) -> bool:
        return bool(super().__eq__(other)) and list(getattr(other, "prefixes", [])) == self.prefixes

    __hash__ = None  # type: ignore[assignment]  # mutable, like Tlp

    def __repr__(self) -> str:
        base = super().__repr__()
        return f"{base[:-1]}, prefixes={[f'0x{p:08x}' for p in self.prefixes]})"


def install() -> None:
    """Make cocotbext-pcie's per-hop receive copy preserve prefixes (idempotent)."""
    _port.Tlp = PasidTlp
