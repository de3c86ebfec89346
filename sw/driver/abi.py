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
RX_HDR_SIZE = 16
_DESC = struct.Struct("<BBHIQQII")
_CPL = struct.Struct("<BBHIII")
_RX = struct.Struct("<IIQ")


@dataclass(frozen=True, slots=True)
class Descriptor:
    """32 bytes: opcode, flags, rsvd16, length, src (FILL: 8-byte pattern), dst, tag, rsvd32.

    SEND: ``dst`` is the embedded switch address of the receiving queue.
    """

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
class RxHeader:
    """First 16 bytes of a receive slot, written by the device: length, source address, rsvd."""

    length: int
    src_addr: int  # switch address of the sender's port (0 if unknown)
    seq: int = 0

    def pack(self) -> bytes:
        return _RX.pack(self.length, self.src_addr, self.seq)

    @classmethod
    def unpack(cls, raw: bytes) -> RxHeader:
        length, src, seq = _RX.unpack_from(raw)
        return cls(length, src, seq)


class Portal(IntEnum):
    """Offsets inside one ADI's portal page (``PortalPage`` in docs/datasheet.md)."""

    DOORBELL = 0x00  # W: new submission tail
    RX_DOORBELL = 0x04  # W: receive head (next slot software will consume)
    STATUS = 0x08  # R: [1:0] state, [15:8] error, [16] busy
    HEAD = 0x0C  # R: submission head
    RX_TAIL = 0x10  # R: receive tail (device producer index)
