"""Device ABI seen by the fast path: the hardware-visible formats, defined once in the model.

Descriptor, completion record, receive slot header, opcodes, flags, completion status, ADI
states, commands and error codes are ``siov_sim.model.adi.formats`` (which follows the RTL and
sections 2-6 of ``docs/datasheet.md``); this module only re-exports them for ``sw/``, so the
host software cannot drift from the hardware. Register and portal-page offsets come from
``siov_sim.sw.regs`` (``AdiPage``, ``PortalPage``), generated from ``rtl/regs/ep_regs.rdl``.

What the software reads from a completion record: ``status`` SUCCESS, ERROR (``error`` holds the
:class:`ErrorCode` and the ADI is in ERROR) or DROPPED (a SEND whose receiver's ring was full,
``error`` = RX_FULL; the ADI keeps running); ``tag`` is the descriptor's 32-bit tag.
"""

from __future__ import annotations

from siov_sim.model.adi.formats import (
    CPL_SIZE,
    DESC_SIZE,
    MAX_SEND,
    MAX_XFER,
    RX_HDR_SIZE,
    AdiState,
    Cmd,
    Completion,
    CplStatus,
    DescFlags,
    Descriptor,
    ErrorCode,
    Opcode,
    RxHeader,
    fill_bytes,
)

TAG_MASK = 0xFFFF_FFFF  # descriptor tag: 32 bits (datasheet section 4)
SWITCH_ADDR_MASK = 0xFFFF  # SEND: switch address in dst[15:0]

__all__ = [
    "CPL_SIZE",
    "DESC_SIZE",
    "MAX_SEND",
    "MAX_XFER",
    "RX_HDR_SIZE",
    "SWITCH_ADDR_MASK",
    "TAG_MASK",
    "AdiState",
    "Cmd",
    "Completion",
    "CplStatus",
    "DescFlags",
    "Descriptor",
    "ErrorCode",
    "Opcode",
    "RxHeader",
    "error_name",
    "fill_bytes",
]


def error_name(code: int) -> str:
    """``ErrorCode`` name of ``code`` (``0x..`` for a value the datasheet does not define)."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"0x{code:02x}"
