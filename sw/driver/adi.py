"""The PF driver's view of the ADI slow path: a small interface over the PF control registers.

:class:`AdiControl` is what the VDCM needs from the hardware: configure a queue block (ring
bases, PASID, PMR), program its IMS entry, enable / drain / reset it, read its state, and
program the embedded switch's forwarding table. Only the PF driver holds an implementation;
guests never see one. The register-level implementation sits on the register layer generated
from ``rtl/regs/ep_regs.rdl`` (``sw/regs``); tests use an in-Python fake with the same
behaviour.

Migration (docs/software.md "Migrating an ADI"): ``quiesce`` stops an ADI at a descriptor
boundary, ``save`` reads its whole architectural state as an :class:`AdiSnapshot` (``pack`` /
``unpack`` give the versioned byte form a migration stream carries), ``load`` writes a snapshot
into another, reset ADI with the destination's PASID; the caller then enables it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Protocol

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
class AdiSnapshot:
    """Whole architectural state of one quiesced ADI (what a migration carries).

    ``cfg`` holds the ring/completion/receive geometry, PASID and PMR (the destination loads it
    with its own PASID). ``ims`` is the IMS entry as programmed (None = cleared: address and
    data 0); ``ims_masked`` / ``ims_pending`` its vector control. ``sw_*`` is the switch port
    (group, own switch address, send / receive enables; the forwarding table is the PF's, not
    the ADI's). ``state`` is what the ADI was in when quiesce started (ENABLED, DISABLED) or
    ERROR if it is in ERROR now; ``error`` / ``err_info`` its error reason and ring index.
    ``head`` .. ``rx_tail`` are ring indices, ``cnt_desc`` / ``cnt_bytes`` the completion
    counters (32 bits, wrapping).

    :meth:`pack` gives a fixed little-endian layout (:attr:`SIZE` bytes): magic ``'ADIS'``,
    u16 version (:attr:`VERSION`), u16 size, then the fields in declaration order.
    """

    cfg: AdiConfig
    ims: MsiMessage | None
    ims_masked: bool
    ims_pending: bool
    sw_group: int
    sw_addr: int
    sw_send: bool
    sw_recv: bool
    state: AdiState
    error: int
    err_info: int
    head: int
    tail: int
    rx_head: int
    rx_tail: int
    cnt_desc: int
    cnt_bytes: int

    MAGIC: ClassVar[bytes] = b"ADIS"
    VERSION: ClassVar[int] = 1
    # magic, version, size | ring_base, ring_size, cpl_base, pasid, pmr, rx_base, rx_slots,
    # rx_slot_bytes | ims present, addr, data, masked, pending | group, addr, send, recv |
    # state, error, err_info, head, tail, rx_head, rx_tail, cnt_desc, cnt_bytes
    _FMT: ClassVar[struct.Struct] = struct.Struct("<4sHH QIQIBQII BQIBB HHBB BBHHHHHII")
    SIZE: ClassVar[int] = _FMT.size

    def pack(self) -> bytes:
        c = self.cfg
        ims = self.ims or MsiMessage(0, 0)
        try:
            return self._FMT.pack(
                self.MAGIC, self.VERSION, self.SIZE,
                c.ring_base, c.ring_size, c.cpl_base, c.pasid, int(c.pmr), c.rx_base, c.rx_slots,
                c.rx_slot_bytes,
                int(self.ims is not None), ims.addr, ims.data, int(self.ims_masked), int(self.ims_pending),
                self.sw_group, self.sw_addr, int(self.sw_send), int(self.sw_recv),
                int(self.state), self.error, self.err_info, self.head, self.tail, self.rx_head,
                self.rx_tail, self.cnt_desc, self.cnt_bytes,
            )  # fmt: skip
        except struct.error as e:
            raise ValueError(f"AdiSnapshot field out of range: {e}") from e

    @classmethod
    def unpack(cls, data: bytes) -> AdiSnapshot:
        """Inverse of :meth:`pack`; ValueError on a wrong length, magic, version or value."""
        if len(data) != cls.SIZE:
            raise ValueError(f"AdiSnapshot: {len(data)} bytes, expected {cls.SIZE}")
        v = cls._FMT.unpack(data)
        magic, version, size = v[0], v[1], v[2]
        if magic != cls.MAGIC:
            raise ValueError(f"AdiSnapshot: bad magic {magic!r}")
        if version != cls.VERSION or size != cls.SIZE:
            raise ValueError(f"AdiSnapshot: version {version} size {size}, expected {cls.VERSION} {cls.SIZE}")
        (ring_base, ring_size, cpl_base, pasid, pmr, rx_base, rx_slots, rx_slot_bytes,
         ims_on, ims_addr, ims_data, masked, pending, group, sw_addr, send, recv,
         state, error, err_info, head, tail, rx_head, rx_tail, cnt_desc, cnt_bytes) = v[3:]  # fmt: skip
        for name, flag in (("pmr", pmr), ("ims", ims_on), ("masked", masked), ("pending", pending),
                           ("send", send), ("recv", recv)):  # fmt: skip
            if flag > 1:
                raise ValueError(f"AdiSnapshot: flag {name} = {flag}")
        try:
            st = AdiState(state)
        except ValueError:
            raise ValueError(f"AdiSnapshot: bad state {state}") from None
        if st not in (AdiState.ENABLED, AdiState.DISABLED, AdiState.ERROR):
            raise ValueError(f"AdiSnapshot: state {st.name} is not a quiesced state")
        cfg = AdiConfig(ring_base, ring_size, cpl_base, pasid, bool(pmr), rx_base, rx_slots, rx_slot_bytes)
        return cls(
            cfg, MsiMessage(ims_addr, ims_data) if ims_on else None, bool(masked), bool(pending),
            group, sw_addr, bool(send), bool(recv), st, error, err_info, head, tail, rx_head,
            rx_tail, cnt_desc, cnt_bytes,
        )  # fmt: skip


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

    kind: str  # "adi_error" | "drain_done" (DRAIN or QUIESCE finished)
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
        """Stop fetching; the descriptor in flight finishes completely (data, record, counters,
        IMS); return once the device reports no outstanding request. Raises
        :class:`~siov_sim.sw.driver.pf.PfError` on a timeout."""

    async def abort(self, adi: int) -> None:
        """Stop the ADI now (ADI command ABORT): no new descriptor, and the descriptor in flight
        stops at its next DMA request boundary -- requests already issued complete, its record
        says ABORTED with the bytes moved, nothing more of it is moved. Returns once the ADI is
        DISABLED (an ERROR ADI too, its reason kept until :meth:`reset`) with nothing outstanding
        -- at most a few 4 KiB steps, where :meth:`drain` waits for a whole descriptor (up to
        1 MiB). For resets and teardown; migration uses :meth:`quiesce`. Raises
        :class:`~siov_sim.sw.driver.pf.PfError` on a timeout (requests that never complete)."""

    async def reset(self, adi: int) -> None:
        """Back to DISABLED with configuration, error and counters cleared (after a drain)."""

    async def status(self, adi: int) -> AdiStatus: ...

    async def quiesce(self, adi: int) -> AdiState:
        """Stop the ADI at a descriptor boundary and return the state it was in before.

        No new descriptor is fetched; the descriptor in flight (at most one per ADI) finishes
        completely: data, completion record, counters and its IMS message (handed to the
        interrupt path, or left pending if the entry is masked). Afterwards nothing of this ADI
        is outstanding, an ENABLED (or DRAINING) ADI is DISABLED -- or ERROR if that descriptor
        failed -- and an ERROR or DISABLED ADI keeps its state. ``enable`` afterwards resumes
        at ``head`` with nothing lost or repeated (the migration-abort path). Raises
        :class:`~siov_sim.sw.driver.pf.PfError` on a timeout (e.g. Bus Master Enable clear).
        The returned state is remembered for :meth:`save`; a repeated quiesce (after a timeout,
        with no enable, reset or load in between) returns the state the first one found.
        """

    async def save(self, adi: int, was: AdiState | None = None) -> AdiSnapshot:
        """Read the whole state of a quiesced ADI (DISABLED or ERROR, nothing outstanding).

        ``was`` is the state :meth:`quiesce` returned (default: the one it remembered for this
        ADI; PfError if there is none). The snapshot's ``state`` is ERROR if the ADI is in
        ERROR now, else ``was``. PfError if the ADI is not quiesced.
        """

    async def load(self, adi: int, snap: AdiSnapshot, *, pasid: int, ims: MsiMessage | None = None) -> None:
        """Write ``snap`` into ADI ``adi`` with the destination ``pasid`` (and IMS entry ``ims``,
        default ``snap.ims``): configuration, IMS entry and pending bit, switch port, ring
        indices, counters and error state. The target must be DISABLED, without an error and
        with nothing outstanding (a reset ADI), else PfError and nothing is written. A snapshot
        in ERROR leaves the ADI in ERROR with ``snap.error`` / ``err_info``; otherwise it stays
        DISABLED and the caller enables it. The forwarding table is not touched.
        """

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
