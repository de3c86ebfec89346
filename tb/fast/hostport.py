"""ctypes view of the C++ host port (``hostport.cpp``) inside the running simulator process.

The fast-link build exports the host port's ``hp_*`` functions (``-rdynamic``), so
``ctypes.CDLL(None)`` finds them next to the Verilator model. This module only wraps them;
the policy (what to do with frames handed to Python, the resolver) is in ``link.py``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass

from siov_sim.model.iommu.caches import IotlbEntry, IotlbKey

# stream numbers shared with hostport.cpp / ep_fast_top.sv
RX_REQ, RX_CPL, TX_CPL, TX_WR, TX_RD = range(5)
STREAM_NAMES = ("rx_req", "rx_cpl", "tx_cpl", "tx_wr", "tx_rd")
# kind of a frame handed to Python (hp_pop word 0, bits 15:8)
PY_TLP, PY_NO_EOP, PY_NO_SOP = range(3)
# functional-coverage bins the C++ path hits (hp_cov_seen bits, hostport.cpp COV_*): the arguments
# of tb.coverage.sample_tlp(direction, kind, pasid, cpl_status) each bit stands for
COV_BINS = (("up", "mem_wr", 0, None), ("up", "mem_wr", None, None), ("up", "mem_rd", 0, None),
            ("up", "mem_rd", None, None), ("down", "cpl_data", None, 0), ("down", "cpl", None, 1),
            ("down", "cpl", None, 4), ("down", "cpl", None, 2))
# resolver results and request flags (hostport.cpp)
RES_OK, RES_FAULT, RES_SLOW, RES_NOTIFY = 0, 1, 2, 0x100
REQ_WRITE, REQ_PMR, REQ_ER = 1, 2, 4

# hp_stats layout: keep in sync with enum Stat in hostport.cpp
_SCALARS = (
    "wr_fast",
    "rd_fast",
    "wr_bytes",
    "rd_bytes",
    "cpl_fast",
    "tlb_hit",
    "resolve",
    "wr_fault",
    "rd_fault",
    "slow",
    "to_py",
    "from_py",
    "ticks",
)
_PER_STREAM = ("frames", "beats", "payload", "stall", "first", "last")
STAT_NAMES = _SCALARS + tuple(f"{k}_{s}" for k in _PER_STREAM for s in STREAM_NAMES)

RESOLVER = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64)
)

_U32P = ctypes.POINTER(ctypes.c_uint32)
_SIGS: dict[str, tuple[object, list[object]]] = {
    "hp_configure": (None, [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_uint]),
    "hp_set_memory": (None, [ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64]),
    "hp_add_ram_window": (ctypes.c_int, [ctypes.c_uint64, ctypes.c_uint64]),
    "hp_set_resolver": (None, [RESOLVER]),
    "hp_set_tx_ready": (None, [ctypes.c_uint]),
    "hp_reset": (None, []),
    "hp_tlb_put": (
        None,
        [
            ctypes.c_uint32,
            ctypes.c_int32,
            ctypes.c_int,
            ctypes.c_uint64,
            ctypes.c_uint64,
            ctypes.c_uint64,
            ctypes.c_int,
        ],
    ),
    "hp_tlb_drop": (None, [ctypes.c_uint32, ctypes.c_int32, ctypes.c_int, ctypes.c_uint64]),
    "hp_tlb_clear": (None, []),
    "hp_tlb_size": (ctypes.c_uint64, []),
    "hp_clear_stats": (None, []),
    "hp_cov_seen": (ctypes.c_uint32, []),
    "hp_record_start": (None, []),
    "hp_record_mark": (None, [ctypes.c_uint32]),
    "hp_record_stop": (ctypes.c_longlong, [ctypes.c_char_p]),
    "hp_push": (None, [ctypes.c_int, _U32P, ctypes.c_uint32, _U32P, ctypes.c_uint32]),
    "hp_pop": (ctypes.c_int, [_U32P, ctypes.c_int]),
    "hp_pending": (ctypes.c_int, []),
    "hp_rx_idle": (ctypes.c_int, []),
    "hp_stats": (ctypes.c_int, [ctypes.POINTER(ctypes.c_uint64), ctypes.c_int]),
    "hp_cycle": (ctypes.c_uint64, []),
    "hp_order_errors": (ctypes.c_uint64, []),
}


@dataclass(slots=True)
class PoppedFrame:
    stream: int
    kind: int
    hdr: int  # 128 bits, DW0 in [127:96] (the stream's hdr sideband)
    prfx: int
    data: list[int]


class HostPortLib:
    """The ``hp_*`` functions of the simulator process, typed (raises if this is not a fast build)."""

    def __init__(self, lib: ctypes.CDLL | None = None) -> None:
        lib = lib if lib is not None else ctypes.CDLL(None)
        for name, (res, args) in _SIGS.items():
            try:
                fn = getattr(lib, name)
            except AttributeError as exc:
                raise RuntimeError(f"{name} not found: this simulator is not the fast-link build (tb/fast)") from exc
            fn.restype = res
            fn.argtypes = args
            setattr(self, name, fn)
        self._lib = lib
        self._buf = (ctypes.c_uint32 * (8 + 1024))()
        self._hdr = (ctypes.c_uint32 * 4)()
        self._stats = (ctypes.c_uint64 * len(STAT_NAMES))()
        self._resolver_ref: object = None  # keep the ctypes callback alive

    # -- configuration
    def configure(self, *, max_payload_dw: int, rcb: int, split_on_all_rcb: bool, read_latency: int) -> None:
        self.hp_configure(max_payload_dw, rcb, int(split_on_all_rcb), read_latency)  # type: ignore[attr-defined]

    def set_memory(self, buffer: int, base: int, size: int, windows: list[tuple[int, int]]) -> None:
        self.hp_set_memory(buffer, base, size)  # type: ignore[attr-defined]
        for lo, hi in windows:
            if self.hp_add_ram_window(lo, hi) != 0:  # type: ignore[attr-defined]
                raise ValueError(f"RAM window 0x{lo:x}-0x{hi:x} is outside the shared buffer")

    def set_resolver(self, fn: Callable[[int, int, int, int, ctypes._Pointer[ctypes.c_uint64]], int]) -> None:
        cb = RESOLVER(fn)
        self._resolver_ref = cb
        self.hp_set_resolver(cb)  # type: ignore[attr-defined]

    def reset(self) -> None:
        self.hp_reset()  # type: ignore[attr-defined]

    # -- frames
    def push(self, stream: int, hdr: int, prfx: int, data: list[int]) -> None:
        h = self._hdr
        h[0], h[1], h[2], h[3] = (
            hdr >> 96 & 0xFFFF_FFFF,
            hdr >> 64 & 0xFFFF_FFFF,
            hdr >> 32 & 0xFFFF_FFFF,
            hdr & 0xFFFF_FFFF,
        )
        n = len(data)
        arr = (ctypes.c_uint32 * max(n, 1))(*data)
        self.hp_push(stream, h, prfx, arr, n)  # type: ignore[attr-defined]

    def pop(self) -> PoppedFrame | None:
        buf = self._buf
        n = self.hp_pop(buf, len(buf))  # type: ignore[attr-defined]
        if n == 0:
            return None
        if n < 0:
            buf = (ctypes.c_uint32 * -n)()
            n = self.hp_pop(buf, len(buf))  # type: ignore[attr-defined]
        w = buf[:n]
        hdr = w[3] << 96 | w[4] << 64 | w[5] << 32 | w[6]
        return PoppedFrame(w[0] & 0xFF, w[0] >> 8 & 0xFF, hdr, w[1], w[7 : 7 + w[2]])

    def pending(self) -> int:
        return int(self.hp_pending())  # type: ignore[attr-defined]

    def idle(self) -> bool:
        return bool(self.hp_rx_idle())  # type: ignore[attr-defined]

    def cycle(self) -> int:
        return int(self.hp_cycle())  # type: ignore[attr-defined]

    def stats(self) -> dict[str, int]:
        self.hp_stats(self._stats, len(self._stats))  # type: ignore[attr-defined]
        return dict(zip(STAT_NAMES, self._stats, strict=True))

    def record_start(self) -> None:
        """Record every input the RTL gets from now on (for ``replay_main.cpp``); call before reset."""
        self.hp_record_start()  # type: ignore[attr-defined]

    def record_mark(self, mark: int) -> None:
        """Mark the current cycle in the recording (1 = traffic start, 2 = traffic end)."""
        self.hp_record_mark(mark)  # type: ignore[attr-defined]

    def record_stop(self, path: str) -> int:
        n = int(self.hp_record_stop(path.encode()))  # type: ignore[attr-defined]
        if n < 0:
            raise OSError(f"could not write the recording {path}")
        return n

    def cov_seen(self) -> int:
        return int(self.hp_cov_seen())  # type: ignore[attr-defined]

    def clear_stats(self) -> None:
        self.hp_clear_stats()  # type: ignore[attr-defined]

    def tlb_size(self) -> int:
        return int(self.hp_tlb_size())  # type: ignore[attr-defined]


class IotlbMirror:
    """``IotlbObserver`` that keeps the C++ mirror equal to the model's IOTLB."""

    def __init__(self, lib: HostPortLib) -> None:
        self._put = lib.hp_tlb_put  # type: ignore[attr-defined]
        self._drop = lib.hp_tlb_drop  # type: ignore[attr-defined]
        self._clear = lib.hp_tlb_clear  # type: ignore[attr-defined]

    def iotlb_put(self, key: IotlbKey, entry: IotlbEntry) -> None:
        sid, pasid, pmr, pfn = key
        perm = int(entry.write_ok) | int(entry.read_ok) << 1  # bit 0 write, bit 1 read permitted
        self._put(sid, pasid, int(pmr), pfn, entry.out_base, entry.off_mask, perm)

    def iotlb_drop(self, key: IotlbKey) -> None:
        sid, pasid, pmr, pfn = key
        self._drop(sid, pasid, int(pmr), pfn)

    def iotlb_clear(self) -> None:
        self._clear()
