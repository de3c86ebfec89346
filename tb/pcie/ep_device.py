"""The RTL endpoint as a cocotbext-pcie ``Device``: TLP objects ⇄ the generic TLP streams of ep_top.

``EpDevice`` has no Python ``Function``: every TLP that arrives from the link — config type 0
included — is handed to the RTL on ``rx_req_tlp_*`` (completions on ``rx_cpl_tlp_*``), so
enumeration really reads the RTL's config space. Everything the RTL emits on ``tx_cpl_tlp_*``,
``tx_wr_req_tlp_*`` and ``tx_rd_req_tlp_*`` becomes a :class:`PasidTlp` (the ``prfx`` sideband
becomes its prefix) and goes up the link in the order the link accepted the frames (eop beat
taken). The three sinks take frames independently, as a hard IP's separate TX queues may, so
the adapter is also an **ordering checker**: a completion (``tx_cpl``) or read request
(``tx_rd``) accepted while a posted write that the RTL presented in an earlier clock is still not
fully taken has passed that write, which PCIe forbids (Base spec table 2-40, no Relaxed
Ordering). Each one is recorded in :attr:`EpDevice.ordering_errors` and in
:attr:`EpDevice.protocol_errors` (which every system test asserts empty).

Streams (see rtl/README.md): ``hdr[127:0]`` (DW0 in [127:96]), ``data`` (DW *i* in lane *i*,
little-endian bytes), ``strb`` (per-DW), ``prfx`` (0 = none), ``valid/sop/eop/ready``.

Cost control: sources sleep on an event while idle and sinks sleep on ``valid`` rising, so an
idle interface costs no Python per clock.

Link-level stimulus for system tests (all off by default, all driven by an injected ``Random``):

* backpressure on every stream: ``set_pause_generator`` on the three sinks (``ready`` low) and
  on the two sources (``valid`` low between and inside frames), or :meth:`EpDevice.set_backpressure`;
* completion reordering (:meth:`EpDevice.set_cpl_reorder`): completions for DMA reads are held in
  a small pool and released in random order, but only the oldest completion of each tag is
  eligible, so completions of different requests pass each other while the split completions
  of one request stay in order (PCIe ordering rules);
* completion fault injection (:meth:`EpDevice.add_cpl_fault`): an MRd from the RTL that matches a
  rule (PASID, address range) is not sent up the link; a UR/CA (or other status) completion
  for it is sent back instead;
* counters (:attr:`TlpSource.stats`, :attr:`TlpSink.stats`): frames, beats, payload bytes and
  cycles stalled by the other side, for benchmarks.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cocotb
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, Event, First, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.pcie.core import Device
from cocotbext.pcie.core.tlp import CplStatus, Tlp, TlpType
from cocotbext.pcie.core.utils import PcieId

from siov_sim.model.pcie.prefix import is_pasid_prefix
from siov_sim.tb.coverage import once, sample_cpl, sample_tlp, tlp_kind
from siov_sim.tb.pcie.pasid_tlp import PasidTlp, install

log = logging.getLogger(__name__)

_MASK32 = 0xFFFF_FFFF


@dataclass(slots=True)
class TlpFrame:
    """One TLP as the RTL streams see it."""

    hdr: int = 0  # 128 bits, DW0 in [127:96]
    data: list[int] = field(default_factory=list)  # payload DWs
    prfx: int = 0  # one prefix DW, 0 = none
    pres_ns: float | None = None  # sim time the RTL first presented the frame (sink side)

    @property
    def fmt(self) -> int:
        return (self.hdr >> 125) & 0x7

    @property
    def header_dws(self) -> int:
        return 4 if self.fmt & 1 else 3

    @property
    def has_data(self) -> bool:
        return bool(self.fmt & 2)

    @property
    def length_dw(self) -> int:
        n = (self.hdr >> 96) & 0x3FF
        return 1024 if n == 0 else n

    @classmethod
    def from_tlp(cls, tlp: Tlp) -> TlpFrame:
        hdr_bytes = bytes(tlp.pack_header())
        data = bytes(tlp.data) if tlp.has_data() else b""
        prefixes = list(getattr(tlp, "prefixes", ()))
        pasid = [p for p in prefixes if is_pasid_prefix(p)]
        prfx = pasid[0] if pasid else (prefixes[0] if prefixes else 0)
        return cls(
            hdr=int.from_bytes(hdr_bytes.ljust(16, b"\0"), "big"),
            data=[int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)],
            prfx=prfx,
        )

    def to_bytes(self) -> bytes:
        hdr = self.hdr.to_bytes(16, "big")[: 4 * self.header_dws]
        pre = self.prfx.to_bytes(4, "big") if self.prfx else b""
        return pre + hdr + b"".join((d & _MASK32).to_bytes(4, "little") for d in self.data)

    def to_tlp(self) -> PasidTlp:
        return PasidTlp.unpack(self.to_bytes())


# AER error messages (Msg, 4-DW, no data, routed to the Root Complex) by message code
ERR_MSG_CODES = {0x30: "ERR_COR", 0x31: "ERR_NONFATAL", 0x33: "ERR_FATAL"}


def err_msg_of(frame: TlpFrame) -> tuple[str, int] | None:
    """``(name, requester ID)`` if ``frame`` is an ERR_COR / ERR_NONFATAL / ERR_FATAL message.

    The root complex model has no Root Port error collection (cocotbext-pcie rejects message
    TLPs), so both link adapters take these messages off the stream and record them in
    ``err_msgs``, as a Root Port's Root Error Status / Error Source ID would.
    """
    h = frame.hdr
    if h >> 120 != 0b0011_0000:  # Fmt 001b (4-DW, no data), Type 10000b
        return None
    name = ERR_MSG_CODES.get((h >> 64) & 0xFF)
    return None if name is None else (name, (h >> 80) & 0xFFFF)


@dataclass(slots=True)
class StreamStats:
    """What crossed one stream: frames, beats, payload bytes, cycles the other side stalled."""

    frames: int = 0
    beats: int = 0
    payload_bytes: int = 0
    header_bytes: int = 0  # TLP headers + prefixes (sideband here, bytes on a real link)
    stall_cycles: int = 0  # valid && !ready seen from this side (sink: our pauses; source: RTL)
    idle_cycles: int = 0  # source only: cycles our pause generator held valid low mid-stream
    first_ns: float | None = None
    last_ns: float | None = None

    def reset(self) -> None:
        self.frames = self.beats = self.payload_bytes = self.header_bytes = 0
        self.stall_cycles = self.idle_cycles = 0
        self.first_ns = self.last_ns = None


@dataclass(slots=True)
class CplFault:
    """Answer matching MRds from the RTL with a completion of ``status`` instead of sending them
    (``status=None``: swallow the MRd, no completion at all, for completion-timeout tests;
    ``poison=True``: send the MRd up as usual and set EP (poisoned) on its completions).

    ``pasid``: match only this PASID (``None`` = any, including none); ``addr_lo/addr_hi``:
    match MRds that overlap ``[addr_lo, addr_hi)``; ``count``: how many MRds to hit (``None``
    = unlimited). ``hits`` counts the MRds answered so far.
    """

    status: CplStatus | None = CplStatus.UR
    poison: bool = False  # instead: send the MRd up and set EP on every completion of it
    pasid: int | None = None
    addr_lo: int = 0
    addr_hi: int = 1 << 64
    count: int | None = None
    hits: int = 0

    def matches(self, tlp: Tlp) -> bool:
        if self.count is not None and self.hits >= self.count:
            return False
        if self.pasid is not None and getattr(tlp, "pasid", None) != self.pasid:
            return False
        lo = tlp.address
        hi = lo + 4 * max(tlp.length, 1)
        return lo < self.addr_hi and self.addr_lo < hi


class _Stream:
    """Signal handles of one TLP stream ``<prefix>_{hdr,data,strb,prfx,valid,sop,eop,ready}``."""

    def __init__(self, dut: SimHandleBase, prefix: str) -> None:
        self.name = prefix

        def sig(name: str) -> Any:
            return getattr(dut, f"{prefix}_{name}", None)

        self.hdr, self.data, self.strb, self.prfx = sig("hdr"), sig("data"), sig("strb"), sig("prfx")
        self.valid, self.sop, self.eop, self.ready = sig("valid"), sig("sop"), sig("eop"), sig("ready")
        if self.hdr is None or self.valid is None or self.ready is None:
            raise AttributeError(f"DUT has no TLP stream '{prefix}_*' (hdr/valid/ready)")
        self.lanes = len(self.data) // 32 if self.data is not None else 1


class TlpSource:
    """Drives frames into the RTL; sleeps while it has nothing to send."""

    def __init__(self, dut: SimHandleBase, prefix: str, clk: SimHandleBase) -> None:
        self.s = _Stream(dut, prefix)
        self.clk = clk
        self.queue: deque[tuple[TlpFrame, Callable[[], None] | None]] = deque()
        self._wake = Event()
        self.frames_sent = 0
        self.pause: Iterator[int] | None = None
        self.stats = StreamStats()
        s = self.s
        s.valid.value = 0
        for h in (s.sop, s.eop):
            if h is not None:
                h.value = 0
        cocotb.start_soon(self._run())

    def send(self, frame: TlpFrame, on_accept: Callable[[], None] | None = None) -> None:
        self.queue.append((frame, on_accept))
        self._wake.set()

    def set_pause_generator(self, gen: Iterator[int] | None) -> None:
        """``gen`` yields 1 to hold ``valid`` low for a cycle before a beat (source-side gaps),
        0 to present the beat. Consulted only while there is something to send."""
        self.pause = gen

    def idle(self) -> bool:
        return not self.queue

    def _beats(self, frame: TlpFrame) -> Iterator[tuple[int, int, bool, bool]]:
        lanes = self.s.lanes
        words = frame.data if frame.data else [0]
        n = (len(words) + lanes - 1) // lanes
        for b in range(n):
            chunk = words[b * lanes : (b + 1) * lanes]
            data = 0
            for i, w in enumerate(chunk):
                data |= (w & _MASK32) << (32 * i)
            strb = ((1 << len(chunk)) - 1) if frame.data else 0
            yield data, strb, b == 0, b == n - 1

    async def _run(self) -> None:
        s = self.s
        clk_edge = RisingEdge(self.clk)
        while True:
            if not self.queue:
                s.valid.value = 0
                self._wake.clear()
                await self._wake.wait()
                continue
            frame, on_accept = self.queue.popleft()
            s.hdr.value = frame.hdr
            if s.prfx is not None:
                s.prfx.value = frame.prfx
            st = self.stats
            for data, strb, sop, eop in self._beats(frame):
                if self.pause is not None:
                    while next(self.pause):
                        s.valid.value = 0
                        st.idle_cycles += 1
                        await clk_edge
                if s.data is not None:
                    s.data.value = data
                if s.strb is not None:
                    s.strb.value = strb
                if s.sop is not None:
                    s.sop.value = int(sop)
                if s.eop is not None:
                    s.eop.value = int(eop)
                s.valid.value = 1
                while True:
                    await clk_edge
                    if s.ready.value:
                        break
                    st.stall_cycles += 1
                st.beats += 1
            self.frames_sent += 1
            st.frames += 1
            st.payload_bytes += 4 * len(frame.data)
            st.header_bytes += 4 * frame.header_dws + (4 if frame.prfx else 0)
            now = get_sim_time("ns")
            if st.first_ns is None:
                st.first_ns = now
            st.last_ns = now
            if on_accept is not None:
                on_accept()
            if not self.queue:
                s.valid.value = 0


class TlpSink:
    """Collects frames from the RTL; ``ready`` is held high unless a pause generator says no."""

    def __init__(self, dut: SimHandleBase, prefix: str, clk: SimHandleBase,
                 on_frame: Callable[[TlpFrame, str], None]) -> None:
        self.s = _Stream(dut, prefix)
        self.clk = clk
        self.on_frame = on_frame
        self.pause: Iterator[int] | None = None
        self.frames_received = 0
        self.stats = StreamStats()
        self.protocol_errors: list[str] = []
        self.pres_ns: float | None = None  # first clock the next frame's sop beat was valid
        self.cur_pres_ns: float | None = None  # presentation time of the frame being taken
        self.s.ready.value = 1
        cocotb.start_soon(self._run())

    def oldest_open_ns(self) -> float | None:
        """Presentation time of the oldest frame the RTL has presented and the link not yet
        fully taken (None: nothing open)."""
        return self.cur_pres_ns if self.cur_pres_ns is not None else self.pres_ns

    def set_pause_generator(self, gen: Iterator[int] | None) -> None:
        """``gen`` yields 1 to deassert ready for a cycle (backpressure), 0 to accept."""
        self.pause = gen
        if gen is None:
            self.s.ready.value = 1

    def _error(self, msg: str) -> None:
        log.error("%s: %s", self.s.name, msg)
        self.protocol_errors.append(msg)

    async def _run(self) -> None:
        s = self.s
        clk_edge = RisingEdge(self.clk)
        valid_rise = RisingEdge(s.valid)
        frame: TlpFrame | None = None
        while True:
            if self.pause is None and frame is None and not s.valid.value:
                await valid_rise  # idle: no per-clock wake-ups
            if self.pause is not None:
                s.ready.value = 0 if next(self.pause) else 1
            await clk_edge
            if not s.valid.value:
                continue
            if frame is None and self.pres_ns is None:
                self.pres_ns = get_sim_time("ns")
            if not s.ready.value:
                self.stats.stall_cycles += 1
                continue
            self.stats.beats += 1
            sop = bool(s.sop.value) if s.sop is not None else frame is None
            eop = bool(s.eop.value) if s.eop is not None else True
            if sop:
                if frame is not None:
                    self._error("sop inside a frame (previous frame had no eop)")
                frame = TlpFrame(hdr=s.hdr.value.to_unsigned(),
                                 prfx=s.prfx.value.to_unsigned() if s.prfx is not None else 0,
                                 pres_ns=self.pres_ns)
                self.cur_pres_ns, self.pres_ns = self.pres_ns, None
            elif frame is None:
                self._error("beat without sop outside a frame: dropped")
                continue
            if s.data is not None:
                data = s.data.value.to_unsigned()
                strb = s.strb.value.to_unsigned() if s.strb is not None else (1 << s.lanes) - 1
                lane = 0
                while strb:
                    if strb & 1:
                        frame.data.append((data >> (32 * lane)) & _MASK32)
                    strb >>= 1
                    lane += 1
            if eop:
                done, frame = frame, None
                self.cur_pres_ns = None
                self.frames_received += 1
                st = self.stats
                st.frames += 1
                st.payload_bytes += 4 * len(done.data)
                st.header_bytes += 4 * done.header_dws + (4 if done.prfx else 0)
                now = get_sim_time("ns")
                if st.first_ns is None:
                    st.first_ns = now
                st.last_ns = now
                if done.has_data:
                    if len(done.data) != done.length_dw:
                        self._error(f"length field {done.length_dw} DW but {len(done.data)} DW of data")
                else:
                    done.data = []
                self.on_frame(done, s.name)


class EpDevice(Device):  # type: ignore[misc]
    """cocotbext-pcie device whose function(s), config space and BARs are the RTL's own."""

    def __init__(self, dut: SimHandleBase, clk: SimHandleBase, **kwargs: Any) -> None:
        install()  # PASID prefixes survive cocotbext-pcie's per-hop TLP copies
        super().__init__(**kwargs)
        self.dut = dut
        self.rx_req = TlpSource(dut, "rx_req_tlp", clk)
        self.rx_cpl = TlpSource(dut, "rx_cpl_tlp", clk)
        self.tx_cpl = TlpSink(dut, "tx_cpl_tlp", clk, self._from_rtl)
        self.tx_wr = TlpSink(dut, "tx_wr_req_tlp", clk, self._from_rtl)
        self.tx_rd = TlpSink(dut, "tx_rd_req_tlp", clk, self._from_rtl)
        self._tx_order: deque[PasidTlp] = deque()
        self._tx_wake = Event()
        # a test may take frames out of the flow (e.g. to check a UR for an injected bad TLP):
        # return True from the tap to consume the frame
        self.tap: Callable[[TlpFrame, str], bool] | None = None
        self.bad_frames: list[tuple[str, TlpFrame, str]] = []
        self.err_msgs: list[tuple[str, int]] = []  # AER messages from the RTL (err_msg_of)
        self.tlps_down = 0
        self.tlps_up = 0
        self.clk = clk
        # completion reordering (set_cpl_reorder) and fault injection (add_cpl_fault)
        self._reorder_rng: random.Random | None = None
        self._reorder_window = 0
        self._reorder_hold = 0
        self._cpl_pool: list[tuple[TlpFrame, Callable[[], None] | None]] = []
        self._cpl_wake = Event()
        self.cpl_faults: list[CplFault] = []
        self.cpls_reordered = 0  # completions released ahead of an older one
        self.cpls_injected = 0
        # read latency: MRd taken from the RTL -> its first completion handed to rx_cpl (ns)
        self._mrd_sent: dict[int, float] = {}
        self._poison_tags: set[int] = set()
        self.rd_latencies_ns: list[float] = []
        self.ordering_errors: list[str] = []  # completion / read that passed a posted write
        self.ordering_checks = 0  # completions / reads checked while a posted write was open
        cocotb.start_soon(self._run_tx())
        cocotb.start_soon(self._run_cpl_pool())

    # -- link -> RTL -------------------------------------------------------------------------
    async def upstream_recv(self, tlp: Tlp) -> None:
        """Every TLP from the link goes to the RTL; flow-control credits return on RTL accept."""
        self.tlps_down += 1
        if tlp.fmt_type in {TlpType.CFG_READ_0, TlpType.CFG_WRITE_0}:
            self.bus_num = tlp.completer_id.bus
        frame = TlpFrame.from_tlp(tlp)
        sample_tlp("down", tlp_kind(tlp.fmt, tlp.type), getattr(tlp, "pasid", None),
                   int(tlp.status) if tlp.is_completion() else None)
        if tlp.is_completion():
            self._deliver_cpl(frame, tlp.release_fc)
        else:
            self.rx_req.send(frame, tlp.release_fc)

    def inject_request(self, frame: TlpFrame) -> None:
        """Put a raw (possibly malformed) request frame on rx_req, bypassing the TLP classes."""
        self.rx_req.send(frame)

    def inject_completion(self, frame: TlpFrame) -> None:
        self.rx_cpl.send(frame)

    # -- stimulus: backpressure, reordering, faults --------------------------------------------
    def set_backpressure(self, rng: random.Random | None, *, tx_pause: float = 0.3,
                         rx_pause: float = 0.2, burst: int = 4) -> None:
        """Random backpressure on all five streams (``None`` switches it off).

        Each stream gets its own generator seeded from ``rng``: bursts of 1..``burst`` paused
        cycles with probability ``tx_pause`` (sinks: ready low) / ``rx_pause`` (sources: valid low).
        """
        if rng is None:
            for sink in (self.tx_cpl, self.tx_wr, self.tx_rd):
                sink.set_pause_generator(None)
            for src in (self.rx_req, self.rx_cpl):
                src.set_pause_generator(None)
            return

        def gen(r: random.Random, p: float) -> Iterator[int]:
            while True:
                if r.random() < p:
                    yield from [1] * r.randint(1, burst)
                yield 0

        for sink in (self.tx_cpl, self.tx_wr, self.tx_rd):
            sink.set_pause_generator(gen(random.Random(rng.getrandbits(64)), tx_pause))
        for src in (self.rx_req, self.rx_cpl):
            src.set_pause_generator(gen(random.Random(rng.getrandbits(64)), rx_pause))

    def set_cpl_reorder(self, rng: random.Random | None, *, window: int = 8, hold_cycles: int = 64) -> None:
        """Reorder DMA-read completions (``None`` = deliver in arrival order).

        Up to ``window`` completions are pooled; one is released when the pool is full or after
        a random wait of up to ``hold_cycles`` clocks. Only the oldest pooled completion of each
        tag may be released, so split completions of one request keep their order.
        """
        self._reorder_rng = rng
        self._reorder_window = max(1, window)
        self._reorder_hold = max(1, hold_cycles)
        self._cpl_wake.set()

    def add_cpl_fault(self, fault: CplFault) -> CplFault:
        """Answer MRds matching ``fault`` with a completion of ``fault.status`` (see :class:`CplFault`)."""
        self.cpl_faults.append(fault)
        return fault

    def clear_cpl_faults(self) -> None:
        self.cpl_faults.clear()
        self._poison_tags.clear()

    @staticmethod
    def _sample_cpl(frame: TlpFrame) -> None:
        """Functional coverage of a DMA-read completion: status, poisoned, one of several (split)."""
        dw0, dw1 = frame.hdr >> 96 & 0xFFFF_FFFF, frame.hdr >> 64 & 0xFFFF_FFFF
        status = dw1 >> 13 & 0x7
        if dw0 >> 14 & 1:
            once(sample_cpl, "poisoned")
        if status:
            once(sample_cpl, {1: "ur", 4: "ca"}.get(status, f"status{status}"))
            return
        length = (dw0 & 0x3FF) or 0x400
        byte_count = (dw1 & 0xFFF) or 0x1000
        # byte count covers the rest of the request: more than this TLP carries -> more follow;
        # a request that needed several completions ends with one whose byte count fits
        first_dw_bytes = 4 - (frame.hdr >> 32 & 0x3)  # lower address: bytes of the first DW used
        once(sample_cpl, "split" if byte_count > 4 * (length - 1) + first_dw_bytes else "whole")

    @staticmethod
    def _cpl_tag(frame: TlpFrame) -> int:
        return (frame.hdr >> 40) & 0xFF  # DW2[15:8]

    def _deliver_cpl(self, frame: TlpFrame, on_accept: Callable[[], None] | None) -> None:
        if self._poison_tags and self._cpl_tag(frame) in self._poison_tags:
            frame.hdr |= 1 << (96 + 14)  # DW0 bit 14: EP
        self._sample_cpl(frame)
        t0 = self._mrd_sent.pop(self._cpl_tag(frame), None)
        if t0 is not None:
            self.rd_latencies_ns.append(get_sim_time("ns") - t0)
        if self._reorder_rng is None and not self._cpl_pool:
            self.rx_cpl.send(frame, on_accept)
            return
        self._cpl_pool.append((frame, on_accept))
        self._cpl_wake.set()

    async def _run_cpl_pool(self) -> None:
        while True:
            if not self._cpl_pool:
                self._cpl_wake.clear()
                await self._cpl_wake.wait()
                continue
            rng = self._reorder_rng
            if rng is None:  # reordering switched off: flush in order
                while self._cpl_pool:
                    self.rx_cpl.send(*self._cpl_pool.pop(0))
                continue
            if len(self._cpl_pool) < self._reorder_window:
                self._cpl_wake.clear()
                await First(ClockCycles(self.clk, rng.randint(1, self._reorder_hold)), self._cpl_wake.wait())
                if not self._cpl_pool:
                    continue
            seen: set[int] = set()
            eligible: list[int] = []
            for i, (f, _) in enumerate(self._cpl_pool):
                t = self._cpl_tag(f)
                if t not in seen:
                    seen.add(t)
                    eligible.append(i)
            pick = rng.choice(eligible)
            if pick != 0:
                self.cpls_reordered += 1
                once(sample_cpl, "reordered")
            self.rx_cpl.send(*self._cpl_pool.pop(pick))

    def _fault_for(self, tlp: Tlp) -> CplFault | None:
        if tlp.fmt_type not in {TlpType.MEM_READ, TlpType.MEM_READ_64}:
            return None
        for f in self.cpl_faults:
            if f.matches(tlp):
                return f
        return None

    def _inject_fault_cpl(self, tlp: Tlp, fault: CplFault) -> None:
        fault.hits += 1
        self._mrd_sent.pop(tlp.tag, None)
        if fault.status is None:
            log.info("dropping MRd tag %d addr 0x%x pasid %s (no completion)", tlp.tag, tlp.address,
                     getattr(tlp, "pasid", None))
            return
        self.cpls_injected += 1
        cpl = Tlp.create_completion_for_tlp(tlp, PcieId(0, 0, 0), False, fault.status)
        cpl.byte_count = 4 * max(tlp.length, 1)
        log.info("injecting %s completion for MRd tag %d addr 0x%x pasid %s", fault.status.name, tlp.tag,
                 tlp.address, getattr(tlp, "pasid", None))
        self._deliver_cpl(TlpFrame.from_tlp(cpl), None)

    # -- RTL -> link -------------------------------------------------------------------------
    def _from_rtl(self, frame: TlpFrame, stream: str) -> None:
        if stream != "tx_wr_req_tlp" and frame.pres_ns is not None:
            cocotb.start_soon(self._check_order(frame, stream))
        if self.tap is not None and self.tap(frame, stream):
            return
        if (msg := err_msg_of(frame)) is not None:
            log.info("%s from %04x", *msg)
            self.err_msgs.append(msg)
            return
        try:
            tlp = frame.to_tlp()
            if not tlp.check():
                raise ValueError("fails cocotbext-pcie's TLP check")
        except Exception as exc:  # a malformed TLP from the DUT is a DUT bug: record, don't crash
            log.error("%s: malformed TLP from RTL (%s): hdr=0x%032x", stream, exc, frame.hdr)
            self.bad_frames.append((stream, frame, str(exc)))
            return
        sample_tlp("up", tlp_kind(tlp.fmt, tlp.type), tlp.pasid,
                   int(tlp.status) if tlp.is_completion() else None)
        if stream == "tx_rd_req_tlp":
            self._mrd_sent[tlp.tag] = get_sim_time("ns")
            self._poison_tags.discard(tlp.tag)  # a new request on this tag
        if self.cpl_faults and (fault := self._fault_for(tlp)) is not None:
            if fault.poison:
                fault.hits += 1
                self._poison_tags.add(tlp.tag)
            else:
                self._inject_fault_cpl(tlp, fault)
                return
        self._tx_order.append(tlp)
        self._tx_wake.set()

    async def _check_order(self, frame: TlpFrame, stream: str) -> None:
        """After every sink has seen this clock: was a posted write presented before ``frame``
        still open when ``frame`` was taken? (Same-clock acceptance is no violation.)"""
        now = get_sim_time("ns")
        await ReadOnly()
        assert frame.pres_ns is not None
        wr = self.tx_wr.oldest_open_ns()
        if wr is not None:
            self.ordering_checks += 1
        if wr is not None and wr < frame.pres_ns:
            kind = "completion" if stream == "tx_cpl_tlp" else "read request"
            msg = (f"ordering: {kind} hdr=0x{frame.hdr:032x} presented at {frame.pres_ns} ns, taken at "
                   f"{now} ns, passed a posted write presented at {wr} ns")
            log.error("%s", msg)
            self.ordering_errors.append(msg)

    async def _run_tx(self) -> None:
        while True:
            if not self._tx_order:
                self._tx_wake.clear()
                await self._tx_wake.wait()
                continue
            tlp = self._tx_order.popleft()
            self.tlps_up += 1
            await self.upstream_send(tlp)

    def stream_stats(self) -> dict[str, StreamStats]:
        return {"rx_req": self.rx_req.stats, "rx_cpl": self.rx_cpl.stats, "tx_cpl": self.tx_cpl.stats,
                "tx_wr": self.tx_wr.stats, "tx_rd": self.tx_rd.stats}

    def reset_stats(self) -> None:
        for st in self.stream_stats().values():
            st.reset()
        self.rd_latencies_ns.clear()

    @property
    def protocol_errors(self) -> list[str]:
        return [*self.tx_cpl.protocol_errors, *self.tx_wr.protocol_errors, *self.tx_rd.protocol_errors,
                *(f"{s}: {e}" for s, _, e in self.bad_frames), *self.ordering_errors]
