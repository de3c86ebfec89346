"""Golden model of the ADI engine: per-ADI registers, state machine, descriptors, switch, IMS.

Pure Python and synchronous. :class:`AdiDevice` mirrors what software sees through BAR0 (ADI
pages, forwarding table) and BAR2 (portal pages), executes descriptors against an
:class:`AddressSpaces` (one address space per PASID, ``None`` = no PASID) and records the
interrupt messages and PF events the hardware would raise. Descriptors are executed one at a
time, round-robin over the ADIs with work (the RTL overlaps several; the results are the same
for descriptors that do not touch each other's memory, except the order in which SENDs from
different senders fill one receive ring).

Stopping a running descriptor is timing-dependent in the RTL, so the model takes the point as an
input: ``step(adi, abort_at=n)`` (ABORT command: record ABORTED after the step in progress) and
``step(adi, pasid_off_at=n)`` (PASID Enable cleared: no record, ERROR PASID_DISABLED), with ``n``
the bytes the RTL moved; ``command(adi, Cmd.ABORT, outstanding=...)`` and ``pasid_disable()`` are
the state-machine parts. Only COPY/FILL stop early (SEND is one step).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from siov_sim.model.adi.formats import (
    CHUNK,
    CPL_SIZE,
    DESC_SIZE,
    MAX_SEND,
    MAX_XFER,
    RX_HDR_SIZE,
    AdiState,
    Cmd,
    Completion,
    CplStatus,
    Descriptor,
    ErrorCode,
    Opcode,
    RxHeader,
    fill_bytes,
)

log = logging.getLogger(__name__)


class DmaError(Exception):
    """A DMA read failed; ``code`` is the DMA engine status (1 UR, 2 CA, 3 timeout, ...)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"DMA error {code}")
        self.code = code


class AddressSpaces(Protocol):
    """Memory as the device reaches it: ``pasid`` None = requests without a PASID prefix."""

    def read(self, pasid: int | None, addr: int, length: int) -> bytes: ...
    def write(self, pasid: int | None, addr: int, data: bytes) -> None: ...


@dataclass(slots=True)
class AdiConfig:
    """The read/write part of one ADI page (BAR0 0x80000 + n * 0x80)."""

    ring_base: int = 0
    log2_entries: int = 0
    cpl_base: int = 0
    rx_base: int = 0
    rx_log2_slots: int = 0
    rx_log2_slot_bytes: int = 11
    pasid: int = 0
    pmr: bool = False
    pasid_valid: bool = False
    ims_addr: int = 0
    ims_data: int = 0
    ims_mask: bool = True
    group: int = 0
    port_addr: int = 0
    send_en: bool = False
    recv_en: bool = False


@dataclass(slots=True)
class AdiDynamic:
    """The read-only part of one ADI page."""

    state: AdiState = AdiState.DISABLED
    err: int = 0
    head: int = 0
    tail: int = 0
    rx_head: int = 0
    rx_tail: int = 0
    cnt_desc: int = 0
    cnt_bytes: int = 0
    err_info: int = 0
    ims_pending: bool = False
    quiesce: bool = False  # QUIESCE waits for an outstanding request (state DRAINING or ERROR)
    parked: bool = False  # stopped by QUIESCE from ENABLED: SENDs to it are dropped
    pasid_on: bool = False  # enabled with a PASID prefix: stops if PASID Enable is cleared


@dataclass(frozen=True, slots=True)
class ImsMessage:
    adi: int
    addr: int
    data: int


@dataclass(frozen=True, slots=True)
class PfEvent:
    kind: str  # "adi_error" or "drain_done" (DRAIN or QUIESCE finished)
    adi: int
    code: int = 0


@dataclass(slots=True)
class Adi:
    cfg: AdiConfig = field(default_factory=AdiConfig)
    dyn: AdiDynamic = field(default_factory=AdiDynamic)


class AdiDevice:
    def __init__(self, num_adi: int, mem: AddressSpaces, *, pasid_enabled: bool = True) -> None:
        self.num_adi = num_adi
        self.mem = mem
        self.pasid_enabled = pasid_enabled
        self.adis = [Adi() for _ in range(num_adi)]
        self.fwd: list[tuple[bool, int]] = [(False, 0)] * num_adi
        self.ims: list[ImsMessage] = []
        self.pf_events: list[PfEvent] = []
        self._run: list[int] = []  # run queue: ADIs with work, each at most once

    # ------------------------------------------------------------------ slow path (BAR0)
    def space(self, adi: int) -> int | None:
        cfg = self.adis[adi].cfg
        return cfg.pasid if (self.pasid_enabled and cfg.pasid_valid) else None

    def set_pasid(self, adi: int, pasid: int, *, valid: bool = True, pmr: bool = False) -> bool:
        """PASID register write; ignored (returns False) unless the ADI is DISABLED."""
        a = self.adis[adi]
        if a.dyn.state != AdiState.DISABLED:
            return False
        a.cfg.pasid, a.cfg.pasid_valid, a.cfg.pmr = pasid, valid, pmr
        return True

    def set_forwarding(self, addr: int, adi: int, valid: bool = True) -> None:
        self.fwd[addr] = (valid, adi)

    def command(self, adi: int, cmd: Cmd, *, outstanding: int = 0) -> None:
        a = self.adis[adi]
        d = a.dyn
        if cmd == Cmd.ENABLE:
            if d.state != AdiState.DISABLED:
                return
            if a.cfg.ring_base & 0x1F or a.cfg.cpl_base & 0xF:
                self._error(adi, ErrorCode.BAD_RING_ALIGN, force=True)
            elif self.pasid_enabled and not a.cfg.pasid_valid:
                self._error(adi, ErrorCode.NO_PASID, force=True)
            else:
                d.state, d.err, d.parked = AdiState.ENABLED, 0, False
                d.pasid_on = self.pasid_enabled and a.cfg.pasid_valid
                self._schedule(adi)
        elif cmd == Cmd.QUIESCE:
            # stop at a descriptor boundary; ERROR stays ERROR, DISABLED stays DISABLED
            if outstanding:
                d.quiesce = True
                if d.state == AdiState.ENABLED:
                    d.state = AdiState.DRAINING
            else:
                if d.state in (AdiState.ENABLED, AdiState.DRAINING):
                    d.state, d.parked = AdiState.DISABLED, True
                self.pf_events.append(PfEvent("drain_done", adi))
        elif cmd == Cmd.ABORT:
            # DRAIN that also stops the descriptor in flight (its record: ABORTED, see step());
            # overrides a QUIESCE in progress; with nothing outstanding DRAIN at once (ENABLED,
            # DISABLED or ERROR -> DISABLED, status.err kept until RESET)
            d.quiesce = False
            if outstanding:
                d.state = AdiState.DRAINING
            else:
                d.state = AdiState.DISABLED
                self.pf_events.append(PfEvent("drain_done", adi))
        elif cmd not in (Cmd.DRAIN, Cmd.RESET):
            return
        elif outstanding:
            d.state = AdiState.DRAINING
        elif cmd == Cmd.RESET:
            a.dyn = AdiDynamic()
        else:
            d.state = AdiState.DISABLED
            self.pf_events.append(PfEvent("drain_done", adi))

    def pasid_disable(self) -> None:
        """PASID Enable cleared in config space: every ADI enabled with a PASID prefix that is
        ENABLED or DRAINING (with no error yet) stops in ERROR PASID_DISABLED (PF event, IMS). A
        descriptor running at that moment is modelled by ``step(adi, pasid_off_at=...)``."""
        self.pasid_enabled = False
        for n, a in enumerate(self.adis):
            d = a.dyn
            if d.pasid_on and d.state in (AdiState.ENABLED, AdiState.DRAINING) and d.err == 0:
                self._error(n, ErrorCode.PASID_DISABLED)
                self._interrupt(n)

    def outstanding_done(self, adi: int) -> None:
        """The ADI's last outstanding request finished (the RTL's COMPLETE with outstanding 1):
        a DRAIN ends DISABLED; a QUIESCE ends DISABLED, or ERROR if an error was recorded
        meanwhile (a PF adi_error event then), and an ERROR ADI stays ERROR."""
        d = self.adis[adi].dyn
        if d.quiesce:
            d.quiesce = False
            if d.state == AdiState.DRAINING:
                if d.err:
                    d.state = AdiState.ERROR
                    self.pf_events.append(PfEvent("adi_error", adi, d.err))
                else:
                    d.state, d.parked = AdiState.DISABLED, True
            self.pf_events.append(PfEvent("drain_done", adi))
        elif d.state == AdiState.DRAINING:
            d.state = AdiState.DISABLED
            self.pf_events.append(PfEvent("drain_done", adi))

    def loadable(self, adi: int, *, outstanding: int = 0) -> bool:
        """Restore writes (migration load) are accepted: DISABLED, nothing outstanding."""
        d = self.adis[adi].dyn
        return d.state == AdiState.DISABLED and not outstanding and not d.quiesce

    def restore(self, adi: int, field_name: str, value: int, *, outstanding: int = 0) -> bool:
        """A restore write of one dynamic field (datasheet: head, tail, rx_head, rx_tail, cnt_desc,
        cnt_bytes, err_info; ``status`` = (state, err) packed as state | err << 8; ``ims_pending``
        only sets). Ignored (False) unless :meth:`loadable`; indices are masked to their ring."""
        a = self.adis[adi]
        d, c = a.dyn, a.cfg
        if not self.loadable(adi, outstanding=outstanding):
            return False
        ring, rx = (1 << c.log2_entries) - 1, (1 << c.rx_log2_slots) - 1
        if field_name == "head":
            d.head = value & ring
        elif field_name == "tail":
            d.tail = value & ring
        elif field_name == "rx_head":
            d.rx_head = value & rx
        elif field_name == "rx_tail":
            d.rx_tail = value & rx
        elif field_name == "cnt_desc":
            d.cnt_desc = value & 0xFFFF_FFFF
        elif field_name == "cnt_bytes":
            d.cnt_bytes = value & 0xFFFF_FFFF
        elif field_name == "err_info":
            d.err_info = value & 0xFFFF
        elif field_name == "status":
            state = value & 3
            if state not in (AdiState.DISABLED, AdiState.ERROR):
                return False
            d.state, d.err, d.parked = AdiState(state), (value >> 8) & 0xFF, False
        elif field_name == "ims_pending":
            if value & 1:
                d.ims_pending = True
        else:
            raise ValueError(f"no restorable field {field_name!r}")
        return True

    def set_ims_mask(self, adi: int, mask: bool) -> None:
        a = self.adis[adi]
        a.cfg.ims_mask = mask
        if not mask and a.dyn.ims_pending:
            a.dyn.ims_pending = False
            self.ims.append(ImsMessage(adi, a.cfg.ims_addr & ~3, a.cfg.ims_data))

    # ------------------------------------------------------------------ fast path (BAR2)
    def doorbell(self, adi: int, tail: int) -> None:
        a = self.adis[adi]
        if a.dyn.state != AdiState.ENABLED:
            return
        if tail >= 1 << a.cfg.log2_entries:
            a.dyn.err_info = tail & 0xFFFF
            self._error(adi, ErrorCode.DOORBELL_RANGE)
            return
        a.dyn.tail = tail
        self._schedule(adi)

    def rx_doorbell(self, adi: int, head: int) -> None:
        a = self.adis[adi]
        if a.dyn.state != AdiState.ENABLED:
            return
        if head >= 1 << a.cfg.rx_log2_slots:
            a.dyn.err_info = head & 0xFFFF
            self._error(adi, ErrorCode.DOORBELL_RANGE)
            return
        a.dyn.rx_head = head

    # ------------------------------------------------------------------ engine
    def _schedule(self, adi: int) -> None:
        d = self.adis[adi].dyn
        if d.head != d.tail and adi not in self._run:
            self._run.append(adi)

    def _error(self, adi: int, code: ErrorCode, *, force: bool = False) -> None:
        d = self.adis[adi].dyn
        if d.state == AdiState.ENABLED or (force and d.state == AdiState.DISABLED):
            d.state = AdiState.ERROR
            self.pf_events.append(PfEvent("adi_error", adi, int(code)))
        if d.err == 0:
            d.err = int(code)

    def _interrupt(self, adi: int) -> None:
        a = self.adis[adi]
        if a.cfg.ims_mask:
            a.dyn.ims_pending = True
        else:
            self.ims.append(ImsMessage(adi, a.cfg.ims_addr & ~3, a.cfg.ims_data))

    def run(self, enabled: bool = True, limit: int = 1_000_000) -> int:
        """Execute descriptors round-robin until no ADI has work; returns how many ran."""
        n = 0
        while enabled and self._run and n < limit:
            adi = self._run.pop(0)
            d = self.adis[adi].dyn
            if d.state != AdiState.ENABLED or d.head == d.tail:
                continue
            self.step(adi)
            n += 1
            self._schedule(adi)
        return n

    def step(self, adi: int, *, abort_at: int | None = None, pasid_off_at: int | None = None) -> Completion:
        """BEGIN + execute + completion record + COMPLETE for the descriptor at head.

        ``abort_at``: an ABORT of this ADI arrives once ``abort_at`` bytes were moved (the RTL
        stops at a DMA request boundary: the step in progress finishes, so the bytes moved are
        rounded up to the next ``CHUNK`` step): the record says ABORTED with the bytes moved, the
        ADI ends DISABLED with drain_done, no counters, ``err_info`` = ring index, an IMS message
        only if the descriptor asked for one (INTR). ``pasid_off_at``: PASID Enable is cleared
        then instead: no further request, and no completion record (it would need the PASID
        prefix); the ADI ends in ERROR PASID_DISABLED (IMS, PF event) and the returned record
        (status ERROR, PASID_DISABLED) is what COMPLETE reports, not written to memory."""
        a = self.adis[adi]
        cfg, d = a.cfg, a.dyn
        idx = d.head
        d.head = (d.head + 1) & ((1 << cfg.log2_entries) - 1)
        space = self.space(adi)
        stop_at = abort_at if abort_at is not None else pasid_off_at
        try:
            desc = Descriptor.unpack(self.mem.read(space, cfg.ring_base + DESC_SIZE * idx, DESC_SIZE))
        except DmaError as e:
            desc = Descriptor(0, 0)
            rec = Completion(CplStatus.ERROR, 0, 0, 0, e.code)
        else:
            rec = self._execute(adi, desc, stop_at)
        if rec.status == CplStatus.ABORTED and pasid_off_at is not None:
            rec = Completion(CplStatus.ERROR, rec.opcode, rec.bytes_done, rec.tag, ErrorCode.PASID_DISABLED)
            self.pasid_disable()
            d.err_info = idx
            self._error(adi, ErrorCode.PASID_DISABLED)
            return rec
        self.mem.write(space, cfg.cpl_base + CPL_SIZE * idx, rec.pack())
        if rec.status == CplStatus.ABORTED:
            d.err_info = idx
            self.command(adi, Cmd.ABORT, outstanding=1)
            self.outstanding_done(adi)
            if desc.flags & 1:
                self._interrupt(adi)
            return rec
        if abort_at is not None:  # the ABORT came after the last request: done, then DISABLED
            self.command(adi, Cmd.ABORT, outstanding=1)
        if rec.status == CplStatus.ERROR:
            d.err_info = idx
            self._error(adi, ErrorCode(rec.error))
        else:  # SUCCESS or DROPPED: a completed descriptor
            d.cnt_desc = (d.cnt_desc + 1) & 0xFFFF_FFFF
            d.cnt_bytes = (d.cnt_bytes + rec.bytes_done) & 0xFFFF_FFFF
        if desc.flags & 1 or rec.status == CplStatus.ERROR:
            self._interrupt(adi)
        if abort_at is not None:
            self.outstanding_done(adi)
        return rec

    def _execute(self, adi: int, desc: Descriptor, stop_at: int | None = None) -> Completion:
        cfg = self.adis[adi].cfg
        space = self.space(adi)

        def fail(code: int, done: int = 0) -> Completion:
            return Completion(CplStatus.ERROR, desc.opcode, done, desc.tag, code)

        if desc.opcode == Opcode.NOP:
            return Completion(CplStatus.SUCCESS, desc.opcode, 0, desc.tag)
        if desc.opcode not in (Opcode.COPY, Opcode.FILL, Opcode.SEND):
            return fail(ErrorCode.BAD_OPCODE)
        if desc.length == 0:
            return fail(ErrorCode.ZERO_LENGTH)
        if desc.opcode == Opcode.SEND:
            if desc.length > MAX_SEND:
                return fail(ErrorCode.HUGE_LENGTH)
            if not cfg.send_en:
                return fail(ErrorCode.SEND_DENIED)
            return self._send(adi, desc)
        if desc.length > MAX_XFER:
            return fail(ErrorCode.HUGE_LENGTH)
        done = 0
        while done < desc.length:
            if stop_at is not None and done >= stop_at:
                return Completion(CplStatus.ABORTED, desc.opcode, done, desc.tag, ErrorCode.ABORTED)
            n = min(CHUNK, desc.length - done)
            if desc.opcode == Opcode.COPY:
                try:
                    data = self.mem.read(space, desc.src + done, n)
                except DmaError as e:
                    return fail(e.code, done)
            else:
                data = fill_bytes(desc.src, n)
            self.mem.write(space, desc.dst + done, data)
            done += n
        return Completion(CplStatus.SUCCESS, desc.opcode, done, desc.tag)

    def _send(self, adi: int, desc: Descriptor) -> Completion:
        cfg = self.adis[adi].cfg
        addr = desc.dst & 0xFFFF
        valid, dst = self.fwd[addr] if addr < self.num_adi else (False, 0)
        if not valid or dst >= self.num_adi:
            return Completion(CplStatus.ERROR, desc.opcode, 0, desc.tag, ErrorCode.SEND_DENIED)
        try:
            data = self.mem.read(self.space(adi), desc.src, desc.length)
        except DmaError as e:
            return Completion(CplStatus.ERROR, desc.opcode, 0, desc.tag, e.code)
        r = self.adis[dst]
        # a receiver being quiesced or parked by QUIESCE drops the packet like a full ring
        park = r.dyn.parked or (r.dyn.state == AdiState.DRAINING and r.dyn.quiesce)
        if (r.dyn.state != AdiState.ENABLED and not park) or not r.cfg.recv_en or r.cfg.group != cfg.group:
            return Completion(CplStatus.ERROR, desc.opcode, 0, desc.tag, ErrorCode.SEND_DENIED)
        if desc.length + RX_HDR_SIZE > 1 << r.cfg.rx_log2_slot_bytes:
            return Completion(CplStatus.ERROR, desc.opcode, 0, desc.tag, ErrorCode.HUGE_LENGTH)
        mask = (1 << r.cfg.rx_log2_slots) - 1
        if park or (r.dyn.rx_tail + 1) & mask == r.dyn.rx_head:
            return Completion(CplStatus.DROPPED, desc.opcode, 0, desc.tag, ErrorCode.RX_FULL)
        slot = r.cfg.rx_base + (r.dyn.rx_tail << r.cfg.rx_log2_slot_bytes)
        rspace = self.space(dst)
        self.mem.write(rspace, slot + RX_HDR_SIZE, data)
        self.mem.write(rspace, slot, RxHeader(desc.length, cfg.port_addr, desc.tag).pack())
        r.dyn.rx_tail = (r.dyn.rx_tail + 1) & mask
        self._interrupt(dst)
        return Completion(CplStatus.SUCCESS, desc.opcode, desc.length, desc.tag)
