"""IOMMU model throughput: translations per second for IOTLB hits and full walks of each type.

Run as ``python tests/bench/bench_iommu.py`` (``make bench``): prints a table and writes
``build/bench/iommu.json``. A "walk" is an IOTLB miss with the context and PASID caches warm
(the IOTLB is emptied before every translation); "cold" also empties the context/PASID caches.
Targets (issue 3): >= 1,000,000 hits/s and >= 50,000 4-level walks/s.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from siov_sim.model.iommu import Translation, VtdIommu
from siov_sim.model.irq import InterruptController
from siov_sim.model.mem import HostMemory, PageAllocator
from siov_sim.sw.bus import IrqHandler, MsiMessage
from siov_sim.sw.iommu import DomainKind, IommuDriver
from siov_sim.sw.iommu.driver import IOMMU_BASE

ROOT = Path(__file__).resolve().parents[2]

SID = 0x0100
PAGES = 256
TARGET_HITS = 1_000_000
TARGET_WALKS = 50_000


class _Ev:
    def __init__(self) -> None:
        self.flag = False

    def set(self) -> None:
        self.flag = True

    def clear(self) -> None:
        self.flag = False

    def is_set(self) -> bool:
        return self.flag

    async def wait(self) -> None:
        return None


class _Rt:
    async def sleep(self, ns: float) -> None:
        return None

    def event(self) -> _Ev:
        return _Ev()

    def now_ns(self) -> float:
        return 0.0


class Bus:
    def __init__(self) -> None:
        self.mem = HostMemory(0, 1 << 32)
        self.alloc = PageAllocator(0x10_0000, 0x4000_0000)
        self.irq = InterruptController()
        self.runtime = _Rt()
        self.iommu = VtdIommu(self.mem, msi_sink=self.irq.deliver)

    async def mmio_read(self, addr: int, length: int) -> bytes:
        return self.iommu.mmio_read(addr - IOMMU_BASE, length).to_bytes(length, "little")

    async def mmio_write(self, addr: int, data: bytes) -> None:
        self.iommu.mmio_write(addr - IOMMU_BASE, len(data), int.from_bytes(data, "little"))

    async def cfg_read(self, bdf: int, offset: int, length: int) -> bytes:
        return bytes(length)

    async def cfg_write(self, bdf: int, offset: int, data: bytes) -> None:
        return None

    def alloc_irq(self, handler: IrqHandler) -> MsiMessage:
        a, d = self.irq.alloc(lambda x, y: handler(MsiMessage(x, y)))
        return MsiMessage(a, d)

    def free_irq(self, msg: MsiMessage) -> None:
        self.irq.free(msg.addr, msg.data)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        coro.send(None)
    except StopIteration as s:
        return s.value
    raise RuntimeError("suspended")


def setup() -> tuple[Bus, dict[str, tuple[int, int]]]:
    """One device with a PASID per translation type; returns {name: (pasid, base va)}."""
    bus = Bus()
    drv = IommuDriver(bus, preset_ad=True)
    run(drv.bring_up())
    buf = bus.alloc.alloc(PAGES * 4096)
    ss = drv.alloc_domain(DomainKind.SECOND_STAGE)
    fs4 = drv.alloc_domain(DomainKind.FIRST_STAGE)
    fs5 = drv.alloc_domain(DomainKind.FIRST_STAGE, levels=5)
    parent = drv.alloc_domain(DomainKind.SECOND_STAGE)
    nested = drv.alloc_domain(DomainKind.NESTED, parent=parent)
    pt = drv.alloc_domain(DomainKind.PASS_THROUGH)
    ss.map(0x4000_0000, buf, PAGES * 4096)
    fs4.map(0x7F12_3400_0000, buf, PAGES * 4096)
    fs5.map(0x00AB_CDEF_0000_0000, buf, PAGES * 4096)
    parent.map(0x8000_0000, buf, PAGES * 4096)
    nested.map(0x5000_0000, 0x8000_0000, PAGES * 4096)
    run(drv.attach_device(SID, ss))
    for pasid, dom in ((1, fs4), (2, fs5), (3, nested), (4, pt), (5, ss)):
        run(drv.bind_pasid(SID, pasid, dom))
    # warm up A/D bits (nested tables' SS mappings set A on first use)
    for pasid, va in ((1, 0x7F12_3400_0000), (2, 0x00AB_CDEF_0000_0000), (3, 0x5000_0000), (5, 0x4000_0000)):
        for i in range(PAGES):
            assert isinstance(bus.iommu.translate(SID, pasid, va + i * 4096), Translation)
    kinds = {
        "FS 4-level": (1, 0x7F12_3400_0000),
        "FS 5-level": (2, 0x00AB_CDEF_0000_0000),
        "SS 4-level": (5, 0x4000_0000),
        "nested 4+4": (3, 0x5000_0000),
        "pass-through": (4, buf),
    }
    return bus, kinds


def measure(fn: Callable[[int], None], n: int) -> float:
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        fn(n)
        dt = time.perf_counter() - t0
        best = max(best, n / dt)
    return best


def main() -> int:
    logging.disable(logging.WARNING)
    bus, kinds = setup()
    io = bus.iommu
    tr = io.translate
    tlb = io.caches.iotlb
    ctx, pc = io.caches.context, io.caches.pasid
    results: dict[str, dict[str, float]] = {}

    def hits(pasid: int, va: int) -> Callable[[int], None]:
        def f(n: int) -> None:
            for i in range(n):
                tr(SID, pasid, va + ((i & 0xFF) << 12) + 0x10, False)

        return f

    def walks(pasid: int, va: int, cold: bool) -> Callable[[int], None]:
        def f(n: int) -> None:
            clear = tlb.clear
            for i in range(n):
                clear()
                if cold:
                    ctx.clear()
                    pc.clear()
                tr(SID, pasid, va + ((i & 0xFF) << 12), False)

        return f

    for name, (pasid, va) in kinds.items():
        tr(SID, pasid, va)
        results[name] = {
            "iotlb_hit_per_s": measure(hits(pasid, va), 200_000),
            "walk_per_s": measure(walks(pasid, va, False), 10_000),
            "cold_walk_per_s": measure(walks(pasid, va, True), 4_000),
        }
    hit = results["FS 4-level"]["iotlb_hit_per_s"]
    walk4 = results["FS 4-level"]["walk_per_s"]
    print(f"IOMMU model throughput (python {platform.python_version()}, best of 3)")
    print(f"{'translation type':<16} {'IOTLB hit/s':>14} {'walk/s':>12} {'cold walk/s':>12}")
    for name, r in results.items():
        print(f"{name:<16} {r['iotlb_hit_per_s']:>14,.0f} {r['walk_per_s']:>12,.0f} {r['cold_walk_per_s']:>12,.0f}")
    ok_hit, ok_walk = hit >= TARGET_HITS, walk4 >= TARGET_WALKS
    print(
        f"target hits >= {TARGET_HITS:,}/s: {'met' if ok_hit else 'MISSED'} ({hit:,.0f}); "
        f"target FS 4-level walks >= {TARGET_WALKS:,}/s: {'met' if ok_walk else 'MISSED'} ({walk4:,.0f})"
    )
    out = ROOT / "build" / "bench" / "iommu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "machine": platform.machine(),
                "results": results,
                "targets": {"iotlb_hit_per_s": TARGET_HITS, "fs4_walk_per_s": TARGET_WALKS},
                "met": {"iotlb_hit": ok_hit, "fs4_walk": ok_walk},
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
