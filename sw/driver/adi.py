"""The PF driver's view of the ADI slow path: a small interface over the PF control registers.

:class:`AdiControl` is what the VDCM needs from the hardware: configure a queue block (ring
bases, PASID, PMR), program its IMS entry, enable / drain / reset it, read its state, and
program the embedded switch's forwarding table. Only the PF driver holds an implementation;
guests never see one. The register-level implementation sits on the register layer generated
from ``rtl/regs/ep_regs.rdl`` (``sw/regs``); tests use an in-Python fake with the same
behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from siov_sim.sw.bus import MsiMessage
from siov_sim.sw.driver.abi import AdiState as AdiState  # the model's (datasheet section 2)


@dataclass(frozen=True, slots=True)
class AdiConfig:
    """Everything the slow path programs into one ADI (queue block).

    Addresses are in the ADI's own DMA address space (what its PASID translates: GPA, IOVA or
    process VA). ``ring_size`` and ``rx_slots`` are entry counts (powers of two; ``rx_slots`` 0 =
    no SEND receive ring); ``rx_slot_bytes`` is the receive slot size (power of two, 64..64 KiB).
    """

    ring_base: int
    ring_size: int
    cpl_base: int
    pasid: int
    pmr: bool = False
    rx_base: int = 0
    rx_slots: int = 0
    rx_slot_bytes: int = 2048


@dataclass(frozen=True, slots=True)
class AdiStatus:
    state: AdiState
    error: int  # ErrorCode (status.err, 0 = none; docs/datasheet.md section 3)
    sq_head: int
    completed: int  # descriptors completed (counter, wraps at 2^32)
    busy: bool = False  # requests outstanding in the DMA engine


@dataclass(frozen=True, slots=True)
class PfEvent:
    """Something the PF's own interrupt reported: an ADI entered ERROR, or finished DRAIN."""

    kind: str  # "adi_error" | "drain_done"
    adi: int
    error: int = 0  # ErrorCode from last_err.err


class AdiControl(Protocol):
    """Slow-path control of the ADIs of one PF (implemented over BAR0 PF control registers)."""

    @property
    def num_adis(self) -> int: ...

    async def configure(self, adi: int, cfg: AdiConfig) -> None:
        """Write ring bases/sizes, PASID and PMR of a DISABLED ADI."""

    async def set_ims(self, adi: int, msg: MsiMessage | None, masked: bool = False) -> None:
        """Program (``msg``) or clear (``None``) the ADI's IMS entry."""

    async def enable(self, adi: int) -> None: ...

    async def drain(self, adi: int) -> None:
        """Abort/drain: stop fetching, return once the device reports no outstanding request."""

    async def reset(self, adi: int) -> None:
        """Back to DISABLED with configuration, error and counters cleared (after a drain)."""

    async def status(self, adi: int) -> AdiStatus: ...

    async def pf_events(self) -> list[PfEvent]:
        """Read and acknowledge the PF interrupt causes (``pf_int_cause``, ``last_err``, ...)."""

    @property
    def num_switch_addrs(self) -> int: ...

    async def set_switch_port(self, adi: int, group: int, addr: int, *, send: bool, recv: bool) -> None:
        """The ADI's switch port: its group (VLAN-like, 12 bits), its own switch address (the
        source reported to receivers; equal to the forwarding entry that points at it) and
        whether it may send / receive."""

    async def set_forward(self, addr: int, adi: int | None) -> None:
        """Forwarding entry: SENDs to switch address ``addr`` go to ``adi`` (None = invalid).

        The hardware delivers only if the destination's group equals the sender's group.
        """
