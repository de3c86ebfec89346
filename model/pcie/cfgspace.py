"""Decode a PCI Express config space image: header, capability chains, PASID, SIOV DVSEC.

Pure Python; used by ``make sim``'s report and by tests to check the RTL's config space.
Field layouts: PCIe Base (header, PCIe/MSI-X/PASID capabilities) and the Intel Scalable I/O
Virtualization specification (DVSEC ID 5), summarised in ``shared/reference/siov.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

CAP_ID_PCIE = 0x10
CAP_ID_MSIX = 0x11
EXT_CAP_ID_PASID = 0x1B
EXT_CAP_ID_DVSEC = 0x23
DVSEC_VENDOR_INTEL = 0x8086
DVSEC_ID_SIOV = 5


def _u8(d: bytes, o: int) -> int:
    return d[o]


def _u16(d: bytes, o: int) -> int:
    return int.from_bytes(d[o : o + 2], "little")


def _u32(d: bytes, o: int) -> int:
    return int.from_bytes(d[o : o + 4], "little")


@dataclass(frozen=True, slots=True)
class Bar:
    index: int
    address: int
    is_64bit: bool
    prefetchable: bool


@dataclass(frozen=True, slots=True)
class SiovDvsec:
    offset: int
    revision: int
    length: int
    function_dependency_link: int
    homogeneous: bool
    supported_page_sizes: int
    system_page_size: int
    ims_supported: bool

    @property
    def system_page_bytes(self) -> int:
        return 4096 << (self.system_page_size.bit_length() - 1) if self.system_page_size else 0


@dataclass(frozen=True, slots=True)
class PasidCap:
    offset: int
    exec_supported: bool
    priv_supported: bool
    max_width: int
    enabled: bool
    exec_enabled: bool
    priv_enabled: bool


@dataclass(frozen=True, slots=True)
class PcieCap:
    offset: int
    device_type: int
    max_payload_supported: int  # bytes
    max_payload: int  # bytes
    max_read_request: int  # bytes
    ext_tag_supported: bool
    ext_tag_enabled: bool
    e2e_prefix_supported: bool
    max_e2e_prefixes: int


@dataclass(frozen=True, slots=True)
class MsixCap:
    offset: int
    table_size: int
    enabled: bool
    function_mask: bool
    table_bir: int
    table_offset: int
    pba_bir: int
    pba_offset: int


@dataclass(frozen=True, slots=True)
class ConfigSpace:
    raw: bytes

    @property
    def vendor_id(self) -> int:
        return _u16(self.raw, 0)

    @property
    def device_id(self) -> int:
        return _u16(self.raw, 2)

    @property
    def command(self) -> int:
        return _u16(self.raw, 4)

    @property
    def status(self) -> int:
        return _u16(self.raw, 6)

    @property
    def revision(self) -> int:
        return _u8(self.raw, 8)

    @property
    def class_code(self) -> int:
        return _u32(self.raw, 8) >> 8

    @property
    def header_type(self) -> int:
        return _u8(self.raw, 0x0E) & 0x7F

    def bars(self) -> list[Bar]:
        out: list[Bar] = []
        i = 0
        while i < 6:
            v = _u32(self.raw, 0x10 + 4 * i)
            if v & 1:  # I/O BAR
                i += 1
                continue
            is64 = (v >> 1) & 3 == 2
            addr = v & ~0xF
            if is64 and i < 5:
                addr |= _u32(self.raw, 0x14 + 4 * i) << 32
            if v:
                out.append(Bar(i, addr, is64, bool(v & 8)))
            i += 2 if is64 else 1
        return out

    def capabilities(self) -> list[tuple[int, int]]:
        """(id, offset) of the standard capability list, loop-safe."""
        out: list[tuple[int, int]] = []
        if not self.status & 0x10:
            return out
        ptr = _u8(self.raw, 0x34) & 0xFC
        seen: set[int] = set()
        while ptr and ptr not in seen and ptr < 0x100:
            seen.add(ptr)
            out.append((_u8(self.raw, ptr), ptr))
            ptr = _u8(self.raw, ptr + 1) & 0xFC
        return out

    def ext_capabilities(self) -> list[tuple[int, int, int]]:
        """(id, version, offset) of the extended capability list, loop-safe."""
        out: list[tuple[int, int, int]] = []
        ptr = 0x100
        seen: set[int] = set()
        while ptr and ptr not in seen and ptr + 4 <= len(self.raw):
            seen.add(ptr)
            hdr = _u32(self.raw, ptr)
            if hdr in (0, 0xFFFF_FFFF):
                break
            out.append((hdr & 0xFFFF, (hdr >> 16) & 0xF, ptr))
            ptr = (hdr >> 20) & 0xFFC
        return out

    def find_cap(self, cap_id: int) -> int | None:
        return next((o for i, o in self.capabilities() if i == cap_id), None)

    def pcie(self) -> PcieCap | None:
        o = self.find_cap(CAP_ID_PCIE)
        if o is None:
            return None
        caps, devcap, devctl, devcap2 = (_u16(self.raw, o + 2), _u32(self.raw, o + 4),
                                         _u16(self.raw, o + 8), _u32(self.raw, o + 0x24))
        return PcieCap(
            offset=o, device_type=(caps >> 4) & 0xF,
            max_payload_supported=128 << (devcap & 7), max_payload=128 << ((devctl >> 5) & 7),
            max_read_request=128 << ((devctl >> 12) & 7),
            ext_tag_supported=bool(devcap >> 5 & 1), ext_tag_enabled=bool(devctl >> 8 & 1),
            e2e_prefix_supported=bool(devcap2 >> 21 & 1),
            max_e2e_prefixes=((devcap2 >> 22) & 3) or 4,
        )

    def msix(self) -> MsixCap | None:
        o = self.find_cap(CAP_ID_MSIX)
        if o is None:
            return None
        ctrl, table, pba = _u16(self.raw, o + 2), _u32(self.raw, o + 4), _u32(self.raw, o + 8)
        return MsixCap(o, (ctrl & 0x7FF) + 1, bool(ctrl >> 15 & 1), bool(ctrl >> 14 & 1),
                       table & 7, table & ~7, pba & 7, pba & ~7)

    def pasid(self) -> PasidCap | None:
        o = next((off for i, _, off in self.ext_capabilities() if i == EXT_CAP_ID_PASID), None)
        if o is None:
            return None
        cap, ctl = _u16(self.raw, o + 4), _u16(self.raw, o + 6)
        return PasidCap(o, bool(cap >> 1 & 1), bool(cap >> 2 & 1), (cap >> 8) & 0x1F,
                        bool(ctl & 1), bool(ctl >> 1 & 1), bool(ctl >> 2 & 1))

    def siov_dvsec(self) -> SiovDvsec | None:
        """The Intel SIOV DVSEC: extended cap 0x23 with vendor 0x8086 and DVSEC ID 5."""
        for cap_id, _, o in self.ext_capabilities():
            if cap_id != EXT_CAP_ID_DVSEC:
                continue
            h1, h2 = _u32(self.raw, o + 4), _u16(self.raw, o + 8)
            if h1 & 0xFFFF != DVSEC_VENDOR_INTEL or h2 != DVSEC_ID_SIOV:
                continue
            return SiovDvsec(
                offset=o, revision=(h1 >> 16) & 0xF, length=(h1 >> 20) & 0xFFF,
                function_dependency_link=_u8(self.raw, o + 0x0A), homogeneous=bool(_u8(self.raw, o + 0x0B) & 1),
                supported_page_sizes=_u32(self.raw, o + 0x0C), system_page_size=_u32(self.raw, o + 0x10),
                ims_supported=bool(_u32(self.raw, o + 0x14) & 1),
            )
        return None
