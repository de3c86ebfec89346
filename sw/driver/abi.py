"""Device ABI seen by the fast path: descriptor, completion record, RX entry, portal page layout.

Mirrors sections 3-6 of ``docs/datasheet.md`` (error codes, descriptor, completion record,
receive slot header); the portal offsets are those of ``PortalPage`` in ``sw/regs``. Hand-kept
in one module: the datasheet's formats are not (yet) generated into ``sw/regs``.
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


class AdiError(IntEnum):
    """``status.err`` codes (datasheet section 3)."""

    NONE = 0x00
    CPL_UR = 0x01
    CPL_CA = 0x02
    DMA_TIMEOUT = 0x03
    BAD_OPCODE = 0x04
    ZERO_LENGTH = 0x05
    HUGE_LENGTH = 0x06
    DOORBELL_RANGE = 0x07
    BAD_RING_ALIGN = 0x08
    SEND_DENIED = 0x09
    RX_FULL = 0x0A
    NO_PASID = 0x0B


CPL_ERROR_BASE = 0x10  # completion status = error code + 0x10


class CplStatus(IntEnum):
    PENDING = 0  # software zeroes the record before submitting
    SUCCESS = 1
    RX_FULL = 0x0A  # SEND dropped: the receiver's ring was full (not an ADI error)


DESC_SIZE = 32
CPL_SIZE = 16
RX_HDR_SIZE = 16
_DESC = struct.Struct("<BBHIQQQ")
_CPL = struct.Struct("<BBHIQ")
_RX = struct.Struct("<IHBxQ")


@dataclass(frozen=True, slots=True)
class Descriptor:
    """32 bytes: opcode, flags, dst_port (SEND switch address), length, src (FILL: 8-byte
    pattern), dst, cookie."""

    opcode: Opcode
    length: int
    src: int = 0
    dst: int = 0
    cookie: int = 0
    flags: DescFlags = DescFlags.NONE
    dst_port: int = 0

    def pack(self) -> bytes:
        return _DESC.pack(self.opcode, self.flags, self.dst_port, self.length, self.src, self.dst, self.cookie)

    @classmethod
    def unpack(cls, raw: bytes) -> Descriptor:
        op, flags, port, length, src, dst, cookie = _DESC.unpack_from(raw)
        return cls(Opcode(op), length, src, dst, cookie, DescFlags(flags), port)


@dataclass(frozen=True, slots=True)
class Completion:
    """16 bytes: status, opcode, ring index, bytes moved, cookie."""

    status: int  # CplStatus, or CPL_ERROR_BASE + AdiError
    opcode: int
    index: int
    bytes_done: int
    cookie: int

    def pack(self) -> bytes:
        return _CPL.pack(self.status, self.opcode, self.index, self.bytes_done, self.cookie)

    @classmethod
    def unpack(cls, raw: bytes) -> Completion:
        return cls(*_CPL.unpack_from(raw))

    @property
    def ok(self) -> bool:
        return self.status == CplStatus.SUCCESS

    @property
    def error(self) -> int:
        """The AdiError code for an error record (0 otherwise)."""
        return self.status - CPL_ERROR_BASE if self.status >= CPL_ERROR_BASE else 0


@dataclass(frozen=True, slots=True)
class RxHeader:
    """First 16 bytes of a receive slot (written after the payload): length, source switch
    address of the sender, valid, cookie of the sending descriptor."""

    length: int
    src: int
    valid: bool = True
    cookie: int = 0

    def pack(self) -> bytes:
        return _RX.pack(self.length, self.src, int(self.valid), self.cookie)

    @classmethod
    def unpack(cls, raw: bytes) -> RxHeader:
        length, src, valid, cookie = _RX.unpack_from(raw)
        return cls(length, src, bool(valid), cookie)


class Portal(IntEnum):
    """Offsets inside one ADI's portal page (``PortalPage`` in docs/datasheet.md)."""

    DOORBELL = 0x00  # W: new submission tail
    RX_DOORBELL = 0x04  # W: receive head (next slot software will consume)
    STATUS = 0x08  # R: [1:0] state, [15:8] error, [16] busy
    HEAD = 0x0C  # R: submission head
    RX_TAIL = 0x10  # R: receive tail (device producer index)
