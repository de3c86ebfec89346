"""Hardware-visible formats of the ADI engine (docs/datasheet.md sections 3-6).

Descriptor (32 B), completion record (16 B) and receive-slot header (16 B), all little-endian;
opcodes, completion status, ADI states and error codes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

DESC_SIZE = 32
CPL_SIZE = 16
RX_HDR_SIZE = 16
MAX_XFER = 1 << 20  # COPY/FILL length limit (caps.log2_max_xfer)
MAX_SEND = 4096  # SEND length limit (one engine chunk); also <= slot bytes - 16
CHUNK = 2048  # COPY moves data in steps of this many bytes (errors report whole steps in bytes_done)

_DESC = struct.Struct("<BBHIQQII")
_CPL = struct.Struct("<BBHIII")
_RX = struct.Struct("<IIQ")


class Opcode(IntEnum):
    NOP = 0
    COPY = 1
    FILL = 2
    SEND = 3


class DescFlags(IntFlag):
    NONE = 0
    INTR = 1  # IMS interrupt on completion


class CplStatus(IntEnum):
    PENDING = 0  # software zeroes the record before submitting
    SUCCESS = 1
    ERROR = 2  # ``error`` holds the code; the ADI is in ERROR
    DROPPED = 3  # SEND: destination receive ring full, ``error`` = RX_FULL; the ADI keeps running
    ABORTED = 4  # stopped by ABORT at a DMA request boundary, ``error`` = ABORTED, ``bytes`` = moved


class AdiState(IntEnum):
    DISABLED = 0
    ENABLED = 1
    ERROR = 2
    DRAINING = 3


class Cmd(IntEnum):
    ENABLE = 1
    DRAIN = 2
    RESET = 3
    QUIESCE = 4  # DRAIN that keeps (or enters) ERROR; migration (datasheet section 2)
    ABORT = 5  # DRAIN that stops the descriptor in flight at its next DMA request (record ABORTED)


class ErrorCode(IntEnum):
    NONE = 0x00
    CPL_UR = 0x01  # DMA engine status codes 1..7 are passed through
    CPL_CA = 0x02
    DMA_TIMEOUT = 0x03
    CPL_POISONED = 0x04
    CPL_MALFORMED = 0x05
    NO_BUS_MASTER = 0x06
    CPL_OTHER = 0x07
    BAD_OPCODE = 0x10
    ZERO_LENGTH = 0x11
    HUGE_LENGTH = 0x12
    DOORBELL_RANGE = 0x13
    BAD_RING_ALIGN = 0x14
    SEND_DENIED = 0x15
    RX_FULL = 0x16  # completion record only (DROPPED), never an ADI error
    NO_PASID = 0x17
    PASID_DISABLED = 0x18  # PASID Enable cleared while the ADI ran with a PASID
    ABORTED = 0x19  # completion record only (status ABORTED): the descriptor was stopped by ABORT


@dataclass(frozen=True, slots=True)
class Descriptor:
    """opcode, flags, rsvd16, length, src (FILL: 8-byte pattern), dst (SEND: switch address), tag."""

    opcode: int
    length: int
    src: int = 0
    dst: int = 0
    tag: int = 0
    flags: int = 0

    def pack(self) -> bytes:
        return _DESC.pack(self.opcode, self.flags, 0, self.length, self.src, self.dst, self.tag, 0)

    @classmethod
    def unpack(cls, raw: bytes) -> Descriptor:
        op, flags, _r, length, src, dst, tag, _r2 = _DESC.unpack_from(raw)
        return cls(op, length, src, dst, tag, flags)


@dataclass(frozen=True, slots=True)
class Completion:
    """status, opcode, rsvd16, bytes done, tag, error code."""

    status: int
    opcode: int
    bytes_done: int
    tag: int
    error: int = 0

    def pack(self) -> bytes:
        return _CPL.pack(self.status, self.opcode, 0, self.bytes_done, self.tag, self.error)

    @classmethod
    def unpack(cls, raw: bytes) -> Completion:
        st, op, _r, done, tag, err = _CPL.unpack_from(raw)
        return cls(st, op, done, tag, err)


@dataclass(frozen=True, slots=True)
class RxHeader:
    """length, source switch address (sender's sw_port.addr), seq = tag of the SEND descriptor."""

    length: int
    src_addr: int
    seq: int = 0

    def pack(self) -> bytes:
        return _RX.pack(self.length, self.src_addr, self.seq)

    @classmethod
    def unpack(cls, raw: bytes) -> RxHeader:
        length, src, seq = _RX.unpack_from(raw)
        return cls(length, src, seq)


def fill_bytes(pattern: int, length: int) -> bytes:
    """FILL data: the 8-byte little-endian pattern repeated from the destination start."""
    pat = pattern.to_bytes(8, "little")
    return (pat * (length // 8 + 1))[:length]
