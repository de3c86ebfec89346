"""End-End TLP prefixes on the wire, PASID in particular (PCIe Base 6.2.10.4 / siov.md).

A prefix is one DW in front of the TLP header whose Fmt field is ``100b``. The PASID prefix is
``{Fmt=100b, Type=1_0001b, PMR, ER, 2'b00, PASID[19:0]}`` — byte 0 is ``0x91``. This module is
pure Python (no cocotb) so the model, the software and the testbench share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX_FMT = 0b100
PASID_TYPE = 0b1_0001
PASID_PREFIX_BYTE0 = (PREFIX_FMT << 5) | PASID_TYPE  # 0x91
PASID_MAX = (1 << 20) - 1
MAX_PREFIXES = 4  # PCIe allows up to 4 End-End prefixes on one TLP


class PrefixError(ValueError):
    """A malformed prefix sequence (too many prefixes, a non-prefix DW where one was expected)."""


def is_prefix_dw(dw: int) -> bool:
    return (dw >> 29) & 0x7 == PREFIX_FMT


def is_pasid_prefix(dw: int) -> bool:
    return (dw >> 24) & 0xFF == PASID_PREFIX_BYTE0


@dataclass(frozen=True, slots=True)
class PasidPrefix:
    """PASID End-End TLP prefix: 20-bit PASID, Privileged Mode Requested, Execute Requested."""

    pasid: int
    pmr: bool = False
    er: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.pasid <= PASID_MAX:
            raise PrefixError(f"PASID 0x{self.pasid:x} does not fit in 20 bits")

    def pack(self) -> int:
        return (PASID_PREFIX_BYTE0 << 24) | (int(self.pmr) << 23) | (int(self.er) << 22) | self.pasid

    def to_bytes(self) -> bytes:
        return self.pack().to_bytes(4, "big")

    @classmethod
    def unpack(cls, dw: int) -> PasidPrefix:
        if not is_pasid_prefix(dw):
            raise PrefixError(f"0x{dw:08x} is not a PASID prefix (byte 0 must be 0x91)")
        return cls(pasid=dw & PASID_MAX, pmr=bool(dw >> 23 & 1), er=bool(dw >> 22 & 1))


def split_prefixes(pkt: bytes) -> tuple[list[int], bytes]:
    """Strip the leading prefix DWs of a packed TLP: returns (prefix DWs in wire order, rest)."""
    prefixes: list[int] = []
    pos = 0
    while pos + 4 <= len(pkt):
        dw = int.from_bytes(pkt[pos : pos + 4], "big")
        if not is_prefix_dw(dw):
            break
        prefixes.append(dw)
        pos += 4
        if len(prefixes) > MAX_PREFIXES:
            raise PrefixError(f"more than {MAX_PREFIXES} End-End TLP prefixes")
    return prefixes, bytes(pkt[pos:])


def find_pasid(prefixes: list[int]) -> PasidPrefix | None:
    """The PASID prefix among ``prefixes`` (at most one is allowed), or None."""
    found = [dw for dw in prefixes if is_pasid_prefix(dw)]
    if len(found) > 1:
        raise PrefixError("more than one PASID prefix on one TLP")
    return PasidPrefix.unpack(found[0]) if found else None
