"""Device ABI seen by the fast path: descriptor, completion record, RX entry, portal page layout.

PROVISIONAL: these layouts are the software side's working assumption until
``docs/datasheet.md`` / ``sw/regs`` (generated from ``rtl/regs/ep_regs.rdl``) define them; they
live in this one module so that switching to the generated definitions touches nothing else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag


class Opcode(IntEnum):
    NOP = 0
    COPY = 1
    FILL = 2
    SEND = 3


class DescFlags(IntFlag):
    NONE = 0
    INTR = 1  # raise the ADI's IMS interrupt when this descriptor completes


class CplStatus(IntEnum):
    PENDING = 0  # software zeroes the record before submitting
    SUCCESS = 1
    ERROR = 2  # the ADI went to ERROR; reason in its status


DESC_SIZE = 32
CPL_SIZE = 16
RX_ENTRY_SIZE = 16
_DESC = struct.Struct("<BBHIQQII")
_CPL = struct.Struct("<BBHIII")
_RX = struct.Struct("<QII")


@dataclass(frozen=True, slots=True)
class Descriptor:
    """32 bytes: opcode, flags, rsvd16, length, src (FILL: 8-byte pattern), dst, tag, rsvd32."""

    opcode: Opcode
    length: int
    src: int = 0
    dst: int = 0
    tag: int = 0
    flags: DescFlags = DescFlags.NONE

    def pack(self) -> bytes:
        return _DESC.pack(self.opcode, self.flags, 0, self.length, self.src, self.dst, self.tag, 0)

    @classmethod
    def unpack(cls, raw: bytes) -> Descriptor:
        op, flags, _r, length, src, dst, tag, _r2 = _DESC.unpack_from(raw)
        return cls(Opcode(op), length, src, dst, tag, DescFlags(flags))


@dataclass(frozen=True, slots=True)
class Completion:
    """16 bytes: status, opcode, rsvd16, bytes done, tag, error code."""

    status: CplStatus
    opcode: Opcode
    bytes_done: int
    tag: int
    error: int = 0

    def pack(self) -> bytes:
        return _CPL.pack(self.status, self.opcode, 0, self.bytes_done, self.tag, self.error)

    @classmethod
    def unpack(cls, raw: bytes) -> Completion:
        st, op, _r, done, tag, err = _CPL.unpack_from(raw)
        return cls(CplStatus(st), Opcode(op), done, tag, err)


@dataclass(frozen=True, slots=True)
class RxEntry:
    """16 bytes: buffer address, buffer length, written back: received length | DONE (bit 31)."""

    addr: int
    buf_len: int
    rx_len: int = 0
    done: bool = False

    def pack(self) -> bytes:
        return _RX.pack(self.addr, self.buf_len, (self.rx_len & 0x7FFF_FFFF) | (int(self.done) << 31))

    @classmethod
    def unpack(cls, raw: bytes) -> RxEntry:
        addr, blen, word = _RX.unpack_from(raw)
        return cls(addr, blen, word & 0x7FFF_FFFF, bool(word >> 31))


class Portal(IntEnum):
    """Offsets inside one ADI's portal page (BAR2 + adi * system page size)."""

    SQ_TAIL = 0x00  # W: new submission tail (doorbell)
    RX_TAIL = 0x08  # W: new receive tail (buffers posted)
    SQ_HEAD = 0x10  # R: descriptors consumed
    STATUS = 0x18  # R: [1:0] AdiState, [15:8] error code
