"""Scoreboards: plain classes with ``expect`` / ``observe`` / ``assert_drained``.

* :class:`Scoreboard`: keyed expectations (any hashable key, any comparable value), used for
  things that arrive in any order (completion records, interrupt messages, register values).
* :class:`MappedSpaces`: the golden model's view of memory (``siov_sim.model.adi.AddressSpaces``):
  per-PASID IOVA -> host-physical mappings mirroring what the test programmed into the IOMMU,
  over a *model copy* of host memory. Unmapped reads fail like the IOMMU RC answers them (UR),
  reads overlapping an injected completion fault fail with its code, unmapped writes are
  dropped (and counted) like the IOMMU drops them.
* :class:`AdiScoreboard`: wraps :class:`siov_sim.model.adi.AdiDevice` running on a
  :class:`MappedSpaces`. The test mirrors every slow-path / fast-path action into it; the model
  predicts memory contents after COPY/FILL/SEND, completion records, ADI state / error / head /
  counters and the IMS messages. ``observe_*`` methods take what the DUT produced and sample
  ``tb/coverage.py::sample_adi_op`` for every completion record seen.

Nothing here touches cocotb: the system test harness reads the DUT (memory, registers,
interrupts) and hands the values in.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from siov_sim.model.adi import (
    CPL_SIZE,
    AdiDevice,
    AdiDynamic,
    AdiState,
    Cmd,
    Completion,
    CplStatus,
    DmaError,
    ErrorCode,
    ImsMessage,
    Opcode,
)
from siov_sim.model.mem import HostMemory
from siov_sim.tb.coverage import once, sample_adi_cmd, sample_adi_op, sample_irq

log = logging.getLogger(__name__)

PAGE = 4096


class ScoreboardError(AssertionError):
    """What the DUT did differs from the prediction."""


class Scoreboard:
    """Keyed expectations: every ``expect(key, v)`` must be matched by one ``observe(key, v)``."""

    def __init__(self, name: str, *, max_report: int = 10) -> None:
        self.name = name
        self.max_report = max_report
        self.expected: dict[Hashable, Any] = {}
        self.mismatches: list[str] = []
        self.unexpected: list[str] = []
        self.matched = 0

    def expect(self, key: Hashable, value: Any) -> None:
        if key in self.expected:
            raise ValueError(f"{self.name}: {key!r} already expected")
        self.expected[key] = value

    def observe(self, key: Hashable, value: Any) -> bool:
        """Compare with the expectation of ``key``; returns True on a match."""
        if key not in self.expected:
            self.unexpected.append(f"{key!r}: {value!r}")
            log.error("%s: unexpected %r = %r", self.name, key, value)
            return False
        exp = self.expected.pop(key)
        if exp != value:
            self.mismatches.append(f"{key!r}: expected {exp!r}, got {value!r}")
            log.error("%s: %r expected %r, got %r", self.name, key, exp, value)
            return False
        self.matched += 1
        return True

    def assert_drained(self) -> None:
        problems = [*(f"mismatch {m}" for m in self.mismatches), *(f"unexpected {u}" for u in self.unexpected),
                    *(f"missing {k!r}: expected {v!r}" for k, v in self.expected.items())]
        if problems:
            more = f" (+{len(problems) - self.max_report} more)" if len(problems) > self.max_report else ""
            raise ScoreboardError(f"{self.name}: {len(problems)} problem(s), {self.matched} matched: "
                                  + "; ".join(problems[: self.max_report]) + more)


@dataclass(slots=True)
class _Map:
    iova: int
    hpa: int
    size: int
    write: bool


@dataclass(slots=True)
class _ReadFault:
    pasid: int | None
    lo: int
    hi: int
    code: int


@dataclass
class MappedSpaces:
    """``AddressSpaces`` for the golden model: per-PASID IOVA maps over a model copy of RAM."""

    mem: HostMemory
    maps: dict[int | None, list[_Map]] = field(default_factory=dict)
    read_faults: list[_ReadFault] = field(default_factory=list)
    unmapped_read_code: int = int(ErrorCode.CPL_UR)
    blocked_writes: list[tuple[int | None, int, int]] = field(default_factory=list)

    def map(self, pasid: int | None, iova: int, hpa: int, size: int, *, write: bool = True) -> None:
        self.maps.setdefault(pasid, []).append(_Map(iova, hpa, size, write))

    def unmap_all(self, pasid: int | None) -> None:
        self.maps.pop(pasid, None)

    def add_read_fault(self, pasid: int | None, lo: int, hi: int, code: int) -> None:
        """Reads by ``pasid`` overlapping ``[lo, hi)`` fail with ``code`` (mirrors ``CplFault``)."""
        self.read_faults.append(_ReadFault(pasid, lo, hi, code))

    def clear_read_faults(self) -> None:
        self.read_faults.clear()

    def translate(self, pasid: int | None, addr: int, write: bool) -> int | None:
        for m in self.maps.get(pasid, ()):
            if m.iova <= addr < m.iova + m.size:
                return None if write and not m.write else m.hpa + (addr - m.iova)
        return None

    def _pieces(self, pasid: int | None, addr: int, length: int, write: bool) -> list[tuple[int, int, int]] | None:
        """(offset, hpa, n) per page, or None if any page is not mapped."""
        out = []
        pos = 0
        while pos < length:
            a = addr + pos
            n = min(length - pos, PAGE - (a & (PAGE - 1)))
            hpa = self.translate(pasid, a, write)
            if hpa is None:
                return None
            out.append((pos, hpa, n))
            pos += n
        return out

    def read(self, pasid: int | None, addr: int, length: int) -> bytes:
        for f in self.read_faults:
            if (f.pasid is None or f.pasid == pasid) and addr < f.hi and f.lo < addr + length:
                raise DmaError(f.code)
        pieces = self._pieces(pasid, addr, length, False)
        if pieces is None:
            raise DmaError(self.unmapped_read_code)
        return b"".join(self.mem.read(hpa, n) for _, hpa, n in pieces)

    def write(self, pasid: int | None, addr: int, data: bytes) -> None:
        pieces = self._pieces(pasid, addr, len(data), True)
        if pieces is None:  # the IOMMU drops a faulting posted write (whole TLP granularity ~ page)
            self.blocked_writes.append((pasid, addr, len(data)))
            for pos, hpa, n in self._mapped_pieces(pasid, addr, len(data)):
                self.mem.write(hpa, data[pos : pos + n])
            return
        for pos, hpa, n in pieces:
            self.mem.write(hpa, data[pos : pos + n])

    def _mapped_pieces(self, pasid: int | None, addr: int, length: int) -> Iterable[tuple[int, int, int]]:
        pos = 0
        while pos < length:
            a = addr + pos
            n = min(length - pos, PAGE - (a & (PAGE - 1)))
            hpa = self.translate(pasid, a, True)
            if hpa is not None:
                yield pos, hpa, n
            pos += n


ERROR_BIN = {
    ErrorCode.NONE: "none",
    ErrorCode.CPL_UR: "ur",
    ErrorCode.CPL_CA: "ca",
    ErrorCode.DMA_TIMEOUT: "timeout",
    ErrorCode.BAD_OPCODE: "bad_desc",
    ErrorCode.ZERO_LENGTH: "bad_desc",
    ErrorCode.HUGE_LENGTH: "bad_desc",
    ErrorCode.SEND_DENIED: "switch_denied",
    ErrorCode.DOORBELL_RANGE: "ring_overflow",
    ErrorCode.RX_FULL: "ring_overflow",
}


def error_bin(code: int) -> str:
    try:
        return ERROR_BIN.get(ErrorCode(code), f"0x{code:02x}")
    except ValueError:
        return f"0x{code:02x}"


def op_name(op: int) -> str:
    try:
        return Opcode(op).name
    except ValueError:
        return f"op{op}"


@dataclass(frozen=True, slots=True)
class AdiRegs:
    """The read-only ADI registers the harness reads back (BAR0 page)."""

    state: int
    err: int
    head: int
    cnt_desc: int
    cnt_bytes: int
    err_info: int | None = None  # only compared when the ADI had an error

    @classmethod
    def from_model(cls, d: AdiDynamic) -> AdiRegs:
        return cls(int(d.state), d.err, d.head, d.cnt_desc, d.cnt_bytes, d.err_info if d.err else None)


class AdiScoreboard:
    """Golden-model predictions for the ADIs of one endpoint (see module docstring).

    ``model_mem`` must be a copy of host memory kept in step by the test (the harness writes
    descriptors and source data to both). ``check_range`` is the host-physical window that holds
    every ADI's memory: :meth:`memory_diffs` compares all of it, so a write outside an ADI's own
    buffers (into another ADI's memory, or anywhere in the window) shows up as a difference.
    """

    def __init__(self, num_adi: int, model_mem: HostMemory, *, pasid_enabled: bool = True) -> None:
        self.spaces = MappedSpaces(model_mem)
        self.model = AdiDevice(num_adi, self.spaces, pasid_enabled=pasid_enabled)
        self.records = Scoreboard("completion records")
        self.regs = Scoreboard("ADI registers")
        self.ims = Scoreboard("IMS messages")
        self.memory = Scoreboard("memory")
        self.submitted: list[tuple[int, int]] = []  # (adi, ring index) since the last check
        self.ops_checked = 0
        self.outcomes: Counter[tuple[str, str]] = Counter()  # (op, error bin) of records seen

    # ------------------------------------------------------------------ mirror of the stimulus
    def doorbell(self, adi: int, tail: int, indices: Iterable[int] = ()) -> None:
        """The test rang ``adi``'s doorbell with ``tail``; ``indices`` are the ring slots it filled."""
        self.submitted += [(adi, i) for i in indices]
        once(sample_adi_cmd, "DOORBELL", self.model.adis[adi].dyn.state.name)
        self.model.doorbell(adi, tail)
        self.model.run()

    def command(self, adi: int, cmd: Cmd, *, outstanding: int = 0) -> None:
        """Mirror an ENABLE/DRAIN/RESET/QUIESCE/ABORT the test gave the ADI (``outstanding``: requests
        the DUT had in flight when it arrived)."""
        once(sample_adi_cmd, cmd.name, self.model.adis[adi].dyn.state.name)
        self.model.command(adi, cmd, outstanding=outstanding)

    def set_ims_mask(self, adi: int, mask: bool) -> None:
        """Mirror an IMS mask change (unmasking releases a pending message)."""
        if not mask and self.model.adis[adi].dyn.ims_pending:
            once(sample_irq, "ims_pending_released")
        self.model.set_ims_mask(adi, mask)


    def run(self) -> int:
        return self.model.run()

    def record_addr(self, adi: int, idx: int) -> tuple[int | None, int]:
        """(PASID space, IOVA) of the completion record of ring slot ``idx``."""
        return self.model.space(adi), self.model.adis[adi].cfg.cpl_base + CPL_SIZE * idx

    # ------------------------------------------------------------------ predictions
    def expect_records(self, adis: Iterable[int] | None = None) -> list[tuple[int, int]]:
        """Expect the model's completion record of every submitted slot (of ``adis``, default
        all); returns the slots."""
        sel = None if adis is None else set(adis)
        items = [it for it in self.submitted if sel is None or it[0] in sel]
        self.submitted = [it for it in self.submitted if sel is not None and it[0] not in sel]
        for adi, idx in items:
            space, iova = self.record_addr(adi, idx)
            self.records.expect((adi, idx), Completion.unpack(self.spaces.read(space, iova, CPL_SIZE)))
        return items

    def expect_regs(self, adis: Iterable[int]) -> None:
        for a in adis:
            self.regs.expect(a, AdiRegs.from_model(self.model.adis[a].dyn))

    def expect_ims(self, adis: Iterable[int] | None = None) -> None:
        """Expect every IMS message the model raised (for ``adis``) since the last call (as a multiset)."""
        sel = None if adis is None else set(adis)
        take = [m for m in self.model.ims if sel is None or m.adi in sel]
        if take:
            once(sample_irq, "ims")
        if any(self.model.adis[m.adi].dyn.state == AdiState.ERROR for m in take):
            once(sample_irq, "ims_error")  # the message of an ADI that stopped in ERROR
        if any(a.dyn.ims_pending for a in self.model.adis):
            once(sample_irq, "ims_masked_pending")
        for key, n in Counter((m.addr, m.data) for m in take).items():
            self.ims.expect(key, n)
        self.model.ims = [m for m in self.model.ims if sel is not None and m.adi not in sel]

    # ------------------------------------------------------------------ observations
    def observe_record(self, adi: int, idx: int, raw: bytes) -> None:
        rec = Completion.unpack(raw)
        exp = self.records.expected.get((adi, idx))
        self.records.observe((adi, idx), rec)
        self.ops_checked += 1
        if rec.status == CplStatus.PENDING:
            return
        op = rec.opcode if rec.opcode or exp is None else exp.opcode
        sample_adi_op(op_name(op), error_bin(rec.error))
        self.outcomes[(op_name(op), error_bin(rec.error))] += 1

    def observe_regs(self, adi: int, regs: AdiRegs) -> None:
        exp = self.regs.expected.get(adi)
        if exp is not None and exp.err_info is None:
            regs = AdiRegs(regs.state, regs.err, regs.head, regs.cnt_desc, regs.cnt_bytes, None)
        self.regs.observe(adi, regs)

    def observe_ims(self, msgs: Iterable[ImsMessage | tuple[int, int]]) -> None:
        got = Counter((m.addr, m.data) if isinstance(m, ImsMessage) else m for m in msgs)
        for key, n in got.items():
            self.ims.observe(key, n)

    def observe_error_without_record(self, code: int) -> None:
        """An ADI error that has no completion record (doorbell range, enable checks)."""
        sample_adi_op("-", error_bin(code))
        self.outcomes[("-", error_bin(code))] += 1

    def memory_diffs(self, real: HostMemory, lo: int, hi: int, *, ignore: Iterable[tuple[int, int]] = ()) -> list[str]:
        """Differences between the real and the model memory in ``[lo, hi)`` (first byte per page)."""
        ign = list(ignore)
        pages = {*real.nonzero_pages(lo, hi), *self.spaces.mem.nonzero_pages(lo, hi)}
        out = []
        for pfn in sorted(pages):
            a = pfn << 12
            exp, got = self.spaces.mem.read(a, PAGE), real.read(a, PAGE)
            if exp == got:
                continue
            for i in range(PAGE):
                if exp[i] != got[i] and not any(s <= a + i < e for s, e in ign):
                    out.append(f"0x{a + i:x}: expected 0x{exp[i]:02x}, got 0x{got[i]:02x}")
                    break
        return out

    def check_memory(self, real: HostMemory, lo: int, hi: int, *, ignore: Iterable[tuple[int, int]] = ()) -> None:
        for d in self.memory_diffs(real, lo, hi, ignore=ignore):
            self.memory.mismatches.append(d)

    def assert_drained(self) -> None:
        problems = []
        for sb in (self.records, self.regs, self.ims, self.memory):
            try:
                sb.assert_drained()
            except ScoreboardError as e:
                problems.append(str(e))
        if problems:
            raise ScoreboardError("\n".join(problems))
