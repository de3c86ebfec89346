"""The fast link mode: ``FastEpDevice``, the endpoint of ``ep_fast_top`` as a cocotbext-pcie device.

Division of labour (tb/fast/README.md has the whole contract and the measurements):

* the C++ host port (``hostport.cpp``, inside the simulator) serves the RTL's DMA from the
  shared :class:`~siov_sim.model.mem.FlatHostMemory` through an exact mirror of the IOMMU
  model's IOTLB, and on a miss calls :meth:`FastEpDevice._resolve`, which runs the model's
  ``translate()`` (the model stays the only authority on translation, faults and A/D bits);
* everything the C++ side does not serve comes here whole, once per batch (``py_notify``), and
  goes up a :class:`~siov_sim.tb.pcie.direct_port.DirectPort` to the same
  :class:`~siov_sim.tb.pcie.iommu_rc.IommuRootComplex` the accurate mode uses: completions
  for the host's config/MMIO reads, interrupt messages, malformed TLPs, targets outside RAM;
* requests from the host (config, MMIO) and completions the root complex sends come down the
  ``DirectPort`` and are handed whole to the C++ side, which streams them into the RTL;
* MMIO to addresses the root port forwards to this device does not even walk the root
  complex's switch and bridge tasks: ``RcHostBus`` asks :meth:`FastEpDevice.claims` and hands
  the access to :meth:`FastEpDevice.mmio_write` / :meth:`FastEpDevice.mmio_read`, which build
  the same MWr/MRd TLPs cocotbext-pcie's ``MemoryTlpRegion`` builds (requester ID, tags from
  the root complex's pool, MPS/MRRS/4 KiB splits) and take the completions back by tag.

Interrupt messages that the IOMMU model raises while it translates for the C++ side (fault
events) are queued and delivered from the Python task right after, never from inside the
simulator's evaluation.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any

import cocotb
from cocotb.handle import SimHandleBase
from cocotb.triggers import Event, ValueChange
from cocotbext.pcie.core import Device
from cocotbext.pcie.core.tlp import CplStatus, Tlp, TlpType

from siov_sim.model.iommu import Fault
from siov_sim.model.mem import FlatHostMemory
from siov_sim.tb.coverage import sample_tlp, sample_translation, tlp_kind
from siov_sim.tb.fast.hostport import (
    COV_BINS,
    PY_NO_EOP,
    PY_NO_SOP,
    PY_TLP,
    REQ_ER,
    REQ_PMR,
    REQ_WRITE,
    RES_FAULT,
    RES_NOTIFY,
    RES_OK,
    RX_CPL,
    RX_REQ,
    STREAM_NAMES,
    TX_CPL,
    HostPortLib,
    IotlbMirror,
    PoppedFrame,
)
from siov_sim.tb.pcie.direct_port import device_direct_port
from siov_sim.tb.pcie.ep_device import StreamStats, TlpFrame, err_msg_of
from siov_sim.tb.pcie.iommu_rc import IommuRootComplex
from siov_sim.tb.pcie.pasid_tlp import PasidTlp, install

log = logging.getLogger(__name__)

CLK_NS = 4
# MRd accepted -> first completion beat offered, in clocks. The accurate link's median for a
# 512 B read (SimPort gen3 x16 both ways + root complex + adapter) measured by make bench.
DEFAULT_READ_LATENCY = int(os.environ.get("SIOV_FAST_READ_LATENCY", "24"))
_STREAM_OF_SINK = {2: "tx_cpl_tlp", 3: "tx_wr_req_tlp", 4: "tx_rd_req_tlp"}
_M32 = 0xFFFF_FFFF
_MEM_REQUESTS = frozenset({TlpType.MEM_READ, TlpType.MEM_READ_64, TlpType.MEM_WRITE, TlpType.MEM_WRITE_64})


class _DirectRead:
    """One MRd of :meth:`FastEpDevice.mmio_read` waiting for its completions."""

    __slots__ = ("cpls", "done")

    def __init__(self) -> None:
        self.cpls: list[TlpFrame] = []
        self.done = Event()


def _req_hdr(write: bool, addr: int, length: int, first_be: int, last_be: int, tag: int, rid: int) -> int:
    """128-bit header (DW0 in [127:96]) of a memory request, as ``Tlp.pack_header`` lays it out."""
    is64 = addr > _M32
    fmt = (0b010 if write else 0b000) | int(is64)
    dw0 = fmt << 29 | (tag & 0x100) << 11 | (tag & 0x200) << 14 | (length & 0x3FF)
    dw1 = rid << 16 | (tag & 0xFF) << 8 | (last_be & 0xF) << 4 | (first_be & 0xF)
    if is64:
        return dw0 << 96 | dw1 << 64 | (addr >> 32) << 32 | (addr & 0xFFFF_FFFC)
    return dw0 << 96 | dw1 << 64 | (addr & 0xFFFF_FFFC) << 32


def _addr_be(addr: int, length: int) -> tuple[int, int, int]:
    """(DW length, first BE, last BE) of a byte range, as ``Tlp.set_addr_be`` computes them."""
    first_pad = addr % 4
    last_pad = 3 - (addr + length - 1) % 4
    n = (length + first_pad + last_pad + 3) // 4
    first_be, last_be = (0xF << first_pad) & 0xF, 0xF >> last_pad
    if n == 0:
        return 1, 0, 0
    if n == 1:
        return 1, first_be & last_be, 0
    return n, first_be, last_be


def is_fast_top(dut: SimHandleBase) -> bool:
    """True when ``dut`` is ``ep_fast_top`` (the fast-link build) rather than ``ep_top``."""
    try:
        dut.py_notify  # noqa: B018 - the probe is the attribute lookup
    except AttributeError:
        return False
    return True


class FastEpDevice(Device):  # type: ignore[misc]
    """cocotbext-pcie device for ``ep_fast_top``; same role as ``EpDevice`` in the accurate mode."""

    def __init__(
        self, dut: SimHandleBase, rc: IommuRootComplex, *, read_latency: int = DEFAULT_READ_LATENCY, **kwargs: Any
    ) -> None:
        install()
        super().__init__(**kwargs)
        if not isinstance(rc.host_mem, FlatHostMemory):
            raise TypeError("the fast link serves DMA from a FlatHostMemory: build the root complex with one")
        self.dut = dut
        self.rc = rc
        self.clk = dut.clk
        device_direct_port(self)
        lib = self.lib = HostPortLib()
        lib.reset()
        lib.configure(
            max_payload_dw=32 << rc.max_payload_size,
            rcb=128 if rc.read_completion_boundary else 64,
            split_on_all_rcb=bool(rc.split_on_all_rcb),
            read_latency=read_latency,
        )
        mem = rc.host_mem
        lib.set_memory(mem.buffer_address, mem.base, mem.size, rc.ram_windows())
        lib.set_resolver(self._resolve)
        rc.iommu.caches.observer = IotlbMirror(lib)
        lib.hp_tlb_clear()  # type: ignore[attr-defined]
        for key, entry in rc.iommu.caches.iotlb.items():
            rc.iommu.caches.observer.iotlb_put(key, entry)
        self._msi_sink = rc.iommu.msi_sink
        rc.iommu.msi_sink = self._iommu_msi
        self._in_resolver = False
        self._deferred_msis: deque[tuple[int, int]] = deque()
        self.tap: Any = None  # accurate-mode features the fast link does not offer
        self.bad_frames: list[tuple[str, TlpFrame, str]] = []
        self.err_msgs: list[tuple[str, int]] = []  # AER messages from the RTL (err_msg_of)
        self.stream_errors: list[str] = []
        self.tlps_down = 0
        self.py_up = 0  # TLPs from the RTL handled in Python (the rest stayed in C++)
        self._synced = {"dma_rd": 0, "dma_wr": 0}
        self._direct_reads: dict[int, _DirectRead] = {}
        self._cov_sampled = 0  # COV_BINS bits already given to tb.coverage
        self._cov_mmio: set[str] = set()
        self.mmio_direct = 0  # MMIO TLPs that took the direct path
        if os.environ.get("SIOV_FAST_MMIO", "direct") == "direct":  # "rc": bench variant, via the RC
            rc.mmio_bypass = self
        cocotb.start_soon(self._run())

    # -- direct MMIO ---------------------------------------------------------------------------
    def claims(self, addr: int, length: int) -> bool:
        """True when the root port forwards ``[addr, addr + length)`` to this device (its memory
        or prefetchable window), i.e. when the root complex would send the access our way."""
        port = self.upstream_port.other
        bridge = port.parent if port is not None else None
        if bridge is None or not self.rc.bus_master_enable:
            return False
        last = addr + max(length, 1) - 1
        return (bridge.mem_base <= addr and last <= bridge.mem_limit) or (
            bridge.prefetchable_mem_base <= addr and last <= bridge.prefetchable_mem_limit)

    async def mmio_write(self, addr: int, data: bytes) -> None:
        """Posted writes, split like ``MemoryTlpRegion.write`` (MPS, 4 KiB)."""
        rid = int(self.rc.pcie_id)
        mps = 128 << self.rc.max_payload_size
        zero_len = not data
        buf = data or b"\0"
        n = 0
        while n < len(buf):
            first_pad = addr % 4
            chunk = min(len(buf) - n, mps - first_pad, 0x1000 - (addr & 0xFFF))
            dws, fbe, lbe = _addr_be(addr, chunk)
            if zero_len:
                fbe = 0
            raw = bytes(first_pad) + buf[n : n + chunk] + bytes(dws * 4 - first_pad - chunk)
            payload = [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw), 4)]
            self.lib.push(RX_REQ, _req_hdr(True, addr, dws, fbe, lbe, 0, rid), 0, payload)
            self._count_mmio("mem_wr")
            n += chunk
            addr += chunk

    async def mmio_read(self, addr: int, length: int) -> bytes:
        """Non-posted reads, split like ``MemoryTlpRegion.read`` (MRRS, RCB, 4 KiB), one tag each
        from the root complex's pool; completions are checked the way it checks them."""
        rc = self.rc
        rid = int(rc.pcie_id)
        mrrs = 128 << rc.max_read_request_size
        zero_len = length <= 0
        length = max(length, 1)
        ops: list[tuple[int, int, _DirectRead]] = []
        n = 0
        while n < length:
            first_pad = addr % 4
            chunk = length - n
            if chunk > mrrs - first_pad:
                chunk = min(chunk, mrrs - (addr & 0x7F))
            chunk = min(chunk, 0x1000 - (addr & 0xFFF))
            dws, fbe, lbe = _addr_be(addr, chunk)
            if zero_len:
                fbe = 0
            tag = await rc.alloc_tag()
            op = self._direct_reads[tag] = _DirectRead()
            self.lib.push(RX_REQ, _req_hdr(False, addr, dws, fbe, lbe, tag, rid), 0, [])
            self._count_mmio("mem_rd")
            ops.append((chunk, tag, op))
            n += chunk
            addr += chunk
        out = bytearray()
        for chunk, tag, op in ops:
            await op.done.wait()
            del self._direct_reads[tag]
            rc.release_tag(tag)
            m = 0
            for cpl in op.cpls:
                if m >= chunk:
                    break
                status = (cpl.hdr >> 77) & 7
                if status != CplStatus.SC:
                    raise Exception("Unsuccessful completion")  # what MemoryTlpRegion.read raises
                byte_count = (cpl.hdr >> 64) & 0xFFF or 4096
                offset = (cpl.hdr >> 32) & 3
                d = b"".join((w & _M32).to_bytes(4, "little") for w in cpl.data)
                out += d[offset : offset + byte_count]
                m += len(d) - offset
            if m < chunk:
                raise Exception("Timeout")
        return b"" if zero_len else bytes(out[:length])

    def _count_mmio(self, kind: str) -> None:
        self.mmio_direct += 1
        self.tlps_down += 1
        if kind not in self._cov_mmio:  # coverage: once per kind, as for the C++ path's TLPs
            self._cov_mmio.add(kind)
            sample_tlp("down", kind, None, None)

    def _direct_completion(self, frame: TlpFrame) -> bool:
        """A completion for one of our direct reads: keep it; True if it was one."""
        tag = (frame.hdr >> 40) & 0xFF | (frame.hdr >> 107 & 1) << 8 | (frame.hdr >> 110 & 1) << 9
        op = self._direct_reads.get(tag)
        if op is None:
            return False
        op.cpls.append(frame)
        status = (frame.hdr >> 77) & 7
        byte_count = (frame.hdr >> 64) & 0xFFF or 4096
        if status != CplStatus.SC or byte_count <= 4 * len(frame.data) - ((frame.hdr >> 32) & 3):
            op.done.set()  # the last completion of the request (or a failed one)
        return True

    # -- host -> RTL -------------------------------------------------------------------------
    async def upstream_recv(self, tlp: Tlp) -> None:
        self.tlps_down += 1
        if tlp.fmt_type in {TlpType.CFG_READ_0, TlpType.CFG_WRITE_0}:
            self.bus_num = tlp.completer_id.bus
        frame = TlpFrame.from_tlp(tlp)
        cpl = tlp.is_completion()
        sample_tlp("down", tlp_kind(tlp.fmt, tlp.type), getattr(tlp, "pasid", None), int(tlp.status) if cpl else None)
        self.lib.push(RX_CPL if cpl else RX_REQ, frame.hdr, frame.prfx, frame.data)
        tlp.release_fc()

    # -- the resolver: called by the C++ host port from inside the simulator's evaluation ------
    def _resolve(self, sid: int, pasid: int, flags: int, addr: int, out: Any) -> int:
        rc = self.rc
        write = bool(flags & REQ_WRITE)
        self._in_resolver = True
        try:
            r = rc.iommu.translate(
                sid, None if pasid < 0 else pasid, addr, write, bool(flags & REQ_PMR), bool(flags & REQ_ER)
            )
        except Exception:  # a model bug must not take the simulation down (as in IommuRootComplex)
            log.exception("IOMMU model error on sid 0x%x pasid %d addr 0x%x", sid, pasid, addr)
            r = None
        finally:
            self._in_resolver = False
        notify = RES_NOTIFY if self._deferred_msis else 0
        if r is not None:
            sample_translation(r, write)
        if r is None or isinstance(r, Fault):
            if isinstance(r, Fault):
                rc.stats["wr_fault" if write else "rd_fault"] += 1
                rc.faults.append(r)
            out[0] = int(rc.fault_read_status)
            return RES_FAULT | notify
        out[0] = r.hpa
        return RES_OK | notify

    def _iommu_msi(self, addr: int, data: int) -> None:
        if self._in_resolver:
            self._deferred_msis.append((addr, data))
        else:
            self._msi_sink(addr, data)

    # -- RTL -> host: what the C++ side handed over --------------------------------------------
    async def _run(self) -> None:
        changed = ValueChange(self.dut.py_notify)
        while True:
            await self._drain()
            await changed

    async def _drain(self) -> None:
        lib = self.lib
        new = lib.cov_seen() & ~self._cov_sampled
        if new:  # a kind of TLP the C++ path served for the first time: one sample per bin
            self._cov_sampled |= new
            for bit, args in enumerate(COV_BINS):
                if new >> bit & 1:
                    sample_tlp(*args)
        while True:
            while self._deferred_msis:
                self._msi_sink(*self._deferred_msis.popleft())
            f = lib.pop()
            if f is None:
                return
            self.py_up += 1
            if f.stream == TX_CPL and f.kind == 0 and self._direct_reads and self._direct_completion(
                    TlpFrame(hdr=f.hdr, data=f.data, prfx=f.prfx)):
                continue
            if f.stream == TX_CPL and f.kind == PY_TLP and (
                    msg := err_msg_of(TlpFrame(hdr=f.hdr, data=f.data, prfx=f.prfx))) is not None:
                log.info("%s from %04x", *msg)
                self.err_msgs.append(msg)
                continue
            tlp = self._checked(f)
            if tlp is not None:
                sample_tlp(
                    "up", tlp_kind(tlp.fmt, tlp.type), tlp.pasid, int(tlp.status) if tlp.is_completion() else None
                )
                await self.upstream_send(tlp)

    def _checked(self, f: PoppedFrame) -> PasidTlp | None:
        stream = _STREAM_OF_SINK.get(f.stream, STREAM_NAMES[f.stream])
        if f.kind == PY_NO_EOP:
            self._stream_error(stream, "sop inside a frame (previous frame had no eop)")
            return None
        if f.kind == PY_NO_SOP:
            self._stream_error(stream, "beat without sop outside a frame: dropped")
            return None
        frame = TlpFrame(hdr=f.hdr, data=f.data, prfx=f.prfx)
        if frame.has_data and len(frame.data) != frame.length_dw:
            self._stream_error(stream, f"length field {frame.length_dw} DW but {len(frame.data)} DW of data")
        if not frame.has_data:
            frame.data = []
        try:
            tlp = frame.to_tlp()
            if not tlp.check():
                raise ValueError("fails cocotbext-pcie's TLP check")
        except Exception as exc:  # a malformed TLP from the DUT is a DUT bug: record, don't crash
            log.error("%s: malformed TLP from RTL (%s): hdr=0x%032x", stream, exc, frame.hdr)
            self.bad_frames.append((stream, frame, str(exc)))
            return None
        return tlp

    def _stream_error(self, stream: str, msg: str) -> None:
        log.error("%s: %s", stream, msg)
        self.stream_errors.append(f"{stream}: {msg}")

    # -- what the accurate EpDevice offers too --------------------------------------------------
    def sync_stats(self) -> dict[str, int]:
        """Add the C++ side's request counts to ``rc.stats`` (as the accurate path counts them)."""
        st = self.lib.stats()
        now = {"dma_wr": st["wr_fast"] + st["wr_fault"], "dma_rd": st["rd_fast"] + st["rd_fault"]}
        for k, v in now.items():
            self.rc.stats[k] += v - self._synced[k]
            self._synced[k] = v
        return st

    @property
    def tlps_up(self) -> int:
        """TLPs the RTL sent up: those Python handled plus the DMA requests served in C++."""
        st = self.lib.stats()
        return self.py_up + st["wr_fast"] + st["rd_fast"] + st["wr_fault"] + st["rd_fault"]

    @property
    def tlps_to_rtl(self) -> int:
        """TLPs the RTL received: from Python (config, MMIO, slow-lane completions) plus the
        completions the C++ side generated for DMA reads."""
        st = self.lib.stats()
        return self.tlps_down + st["cpl_fast"] + st["rd_fault"]

    def stream_stats(self) -> dict[str, StreamStats]:
        st = self.lib.stats()
        out = {}
        for name in STREAM_NAMES:
            s = StreamStats(
                frames=st[f"frames_{name}"],
                beats=st[f"beats_{name}"],
                payload_bytes=st[f"payload_{name}"],
                stall_cycles=st[f"stall_{name}"],
            )
            if s.beats:
                s.first_ns, s.last_ns = st[f"first_{name}"] * CLK_NS, st[f"last_{name}"] * CLK_NS
            out[name] = s
        return out

    def reset_stats(self) -> None:
        self.sync_stats()
        self.lib.clear_stats()
        self._synced = {"dma_rd": 0, "dma_wr": 0}

    @property
    def protocol_errors(self) -> list[str]:
        n = int(self.lib.hp_order_errors())  # type: ignore[attr-defined]
        order = [f"ordering: {n} completion(s)/read(s) passed a posted write offered before them"] if n else []
        return [*self.stream_errors, *(f"{s}: {e}" for s, _, e in self.bad_frames), *order]

    def _accurate_only(self, what: str) -> None:
        raise NotImplementedError(
            f"{what} is a feature of the accurate link (LINK=accurate); the fast link has no per-beat Python to do it"
        )

    def set_backpressure(self, *_a: Any, **_k: Any) -> None:
        self._accurate_only("random backpressure")

    def set_cpl_reorder(self, *_a: Any, **_k: Any) -> None:
        self._accurate_only("completion reordering")

    def add_cpl_fault(self, *_a: Any, **_k: Any) -> None:
        self._accurate_only("completion fault injection")

    def inject_request(self, frame: TlpFrame) -> None:
        self.lib.push(RX_REQ, frame.hdr, frame.prfx, frame.data)

    def inject_completion(self, frame: TlpFrame) -> None:
        self.lib.push(RX_CPL, frame.hdr, frame.prfx, frame.data)
