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
  ``DirectPort`` and are handed whole to the C++ side, which streams them into the RTL.

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
from cocotb.triggers import ValueChange
from cocotbext.pcie.core import Device
from cocotbext.pcie.core.tlp import Tlp, TlpType

from siov_sim.model.iommu import Fault
from siov_sim.model.mem import FlatHostMemory
from siov_sim.tb.coverage import sample_tlp, tlp_kind
from siov_sim.tb.fast.hostport import (
    PY_NO_EOP,
    PY_NO_SOP,
    REQ_ER,
    REQ_PMR,
    REQ_WRITE,
    RES_FAULT,
    RES_NOTIFY,
    RES_OK,
    RX_CPL,
    RX_REQ,
    STREAM_NAMES,
    HostPortLib,
    IotlbMirror,
    PoppedFrame,
)
from siov_sim.tb.pcie.direct_port import device_direct_port
from siov_sim.tb.pcie.ep_device import StreamStats, TlpFrame
from siov_sim.tb.pcie.iommu_rc import IommuRootComplex
from siov_sim.tb.pcie.pasid_tlp import PasidTlp, install

log = logging.getLogger(__name__)

CLK_NS = 4
# MRd accepted -> first completion beat offered, in clocks. The accurate link's median for a
# 512 B read (SimPort gen3 x16 both ways + root complex + adapter) measured by make bench.
DEFAULT_READ_LATENCY = int(os.environ.get("SIOV_FAST_READ_LATENCY", "24"))
_STREAM_OF_SINK = {2: "tx_cpl_tlp", 3: "tx_wr_req_tlp", 4: "tx_rd_req_tlp"}


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
        self.stream_errors: list[str] = []
        self.tlps_down = 0
        self.slow_up = 0  # TLPs that went up the cocotbext-pcie link (the rest stayed in C++)
        self._stats_base = {"dma_rd": 0, "dma_wr": 0}
        self._synced = {"dma_rd": 0, "dma_wr": 0}
        cocotb.start_soon(self._run())

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
        while True:
            while self._deferred_msis:
                self._msi_sink(*self._deferred_msis.popleft())
            f = lib.pop()
            if f is None:
                return
            tlp = self._checked(f)
            if tlp is not None:
                self.slow_up += 1
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
        st = self.lib.stats()
        return self.slow_up + st["wr_fast"] + st["rd_fast"] + st["wr_fault"] + st["rd_fault"]

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
        return [*self.stream_errors, *(f"{s}: {e}" for s, _, e in self.bad_frames)]

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
