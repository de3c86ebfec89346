"""Full-chip ADI harness: ep_top behind the IOMMU root complex, the host IOMMU driver and the PF
driver, each ADI with its own PASID bound to its own second-stage domain, and the golden-model
scoreboard (``tb/scoreboard.py``) mirroring every action.

Memory layout: the software (IOMMU tables, PF) allocates from ``bus.alloc`` (1 MiB - 512 MiB);
every ADI's memory comes from :attr:`AdiSystem.data_alloc` (the window ``DATA_LO..DATA_HI``), so
comparing that window with the model proves both the data and that nothing else was written.
Each ADI sees its memory at the same kind of IOVA layout (ring, completion records, receive
ring, data), at an IOVA base below or above 4 GiB (3-DW and 4-DW headers)::

    +0x0000 submission ring   +0x1000 completion records   +0x2000 receive ring (2 pages)
    +0x4000 data (``data_pages`` pages: sources in the first half, destinations in the second)
"""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cocotb
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time

from siov_sim.model.adi import (
    CPL_SIZE,
    DESC_SIZE,
    AdiState,
    Cmd,
    Descriptor,
)
from siov_sim.model.mem import HostMemory, PageAllocator
from siov_sim.sw.bus import MsiMessage
from siov_sim.sw.driver.adi import AdiConfig
from siov_sim.sw.driver.pf import PfDriver, PfError
from siov_sim.sw.driver.regs_adi import RegAdiControl
from siov_sim.sw.iommu import Domain, DomainKind, IommuDriver
from siov_sim.sw.regs import AdiPage, Bar0, RegWindow
from siov_sim.tb.env import Env
from siov_sim.tb.pcie.host_bus import RcHostBus
from siov_sim.tb.pcie.iommu_rc import IommuRootComplex
from siov_sim.tb.scoreboard import AdiRegs, AdiScoreboard

log = logging.getLogger(f"cocotb.{__name__}")

RAM_END = 0x8000_0000
SW_LO, SW_HI = 0x0010_0000, 0x2000_0000
DATA_LO, DATA_HI = 0x2000_0000, 0x6000_0000
RING_OFF, CPL_OFF, RX_OFF, DATA_OFF = 0x0000, 0x1000, 0x2000, 0x4000
RX_SLOT_LOG2 = 9  # 512-byte receive slots
RX_SLOTS_LOG2 = 3  # 8 slots (7 usable)
NESTED_GPA_BASE = 0x10_0000_0000  # GPA = this + host address for the memory of a NESTED ADI


@dataclass
class AdiCtx:
    """One ADI as the test set it up."""

    adi: int
    pasid: int
    iova: int  # base of its layout in its own address space
    hpa: int
    size: int
    ring_log2: int
    domain: Domain
    irq: MsiMessage
    group: int = 0
    pmr: bool = False
    tail: int = 0
    outstanding: list[int] = field(default_factory=list)  # ring slots submitted, not yet checked

    @property
    def ring(self) -> int:
        return self.iova + RING_OFF

    @property
    def cpl(self) -> int:
        return self.iova + CPL_OFF

    @property
    def rx(self) -> int:
        return self.iova + RX_OFF

    @property
    def data(self) -> int:
        return self.iova + DATA_OFF

    @property
    def data_size(self) -> int:
        return self.size - DATA_OFF

    @property
    def ring_size(self) -> int:
        return 1 << self.ring_log2


class AdiSystem:
    """Everything a full-chip ADI test needs; ``await start()`` first."""

    def __init__(self, dut: Any, *, seed_offset: int = 0) -> None:
        self.dut = dut
        self.rng = random.Random(cocotb.RANDOM_SEED + seed_offset)
        self.mem = HostMemory(0, RAM_END)
        self.rc = IommuRootComplex(self.mem)
        self.env = Env(dut, rc=self.rc)
        self.ep = self.env.ep
        self.bus = RcHostBus(self.rc, alloc=PageAllocator(SW_LO, SW_HI - SW_LO))
        self.data_alloc = PageAllocator(DATA_LO, DATA_HI - DATA_LO)
        self.iommu = IommuDriver(self.bus)
        self.adis: dict[int, AdiCtx] = {}
        self.irqs: list[tuple[int, int]] = []  # IMS messages received (addr, data)
        self.num_adi = int(dut.NumAdi.value)
        self.sb: AdiScoreboard | None = None
        self._pasids: set[int] = set()

    # ------------------------------------------------------------------ bring-up
    async def start(self) -> None:
        await self.env.start()
        dev = self.env.dev
        assert dev is not None
        self.sid = int(dev.pcie_id)
        self.pf = PfDriver(self.bus, self.sid, self.iommu, RegAdiControl.create)
        await self.pf.probe()
        ctl = self.pf.adi
        assert isinstance(ctl, RegAdiControl)
        self.ctl: RegAdiControl = ctl
        assert self.ctl.num_adis == self.num_adi
        self.bar0 = RegWindow(self.bus, self.pf.bar(0).addr)
        # the model's memory starts as a copy of host memory (zeros in the data window)
        self.sb = AdiScoreboard(self.num_adi, copy.deepcopy(self.mem))

    @property
    def model(self) -> AdiScoreboard:
        assert self.sb is not None
        return self.sb

    def new_pasid(self) -> int:
        while True:
            p = self.rng.randrange(1, 1 << 20)
            if p not in self._pasids:
                self._pasids.add(p)
                return p

    async def add_adi(self, adi: int, *, ring_log2: int = 4, data_pages: int = 4, group: int = 0,
                      send: bool = True, recv: bool = True, ims_masked: bool = False,
                      ring_misalign: int = 0, enable: bool = True, iova: int | None = None,
                      pmr: bool = False, kind: DomainKind | None = None, align: int = 4096) -> AdiCtx:
        """Own domain + PASID, memory, config, IMS, switch port + forwarding entry, enable.

        ``kind``: the domain (default second stage, first stage for PMR); ``PASS_THROUGH`` makes
        the IOVA the host address; ``NESTED`` puts a host-built first stage (IOVA -> GPA) over its
        own second-stage parent (GPA -> host address, the GPA as aligned as the memory).
        ``align``: of the memory (2 MiB with a 2 MiB-aligned ``iova`` and size: the IOMMU driver
        maps it with large pages, in both stages of a nested domain)."""
        sb = self.model
        pasid = self.new_pasid()
        size = DATA_OFF + data_pages * 4096
        hpa = self.data_alloc.alloc(size, align)
        if kind is None:  # second stage (IOVA/GPA style); PMR needs supervisor requests: first stage (SVA)
            kind = DomainKind.FIRST_STAGE if pmr else DomainKind.SECOND_STAGE
        if kind is DomainKind.PASS_THROUGH:
            iova = hpa
        elif iova is None:  # below / above 4 GiB (3-DW / 4-DW headers), often equal across ADIs
            iova = self.rng.choice([0x1000_0000, 0x2_0000_0000, 0x7F_FFF0_0000]) + self.rng.randrange(16) * 0x10_0000
        if kind is DomainKind.NESTED:
            parent = self.iommu.alloc_domain(DomainKind.SECOND_STAGE)
            gpa = NESTED_GPA_BASE + hpa  # keeps the alignment of hpa
            parent.map(gpa, hpa, size)
            dom = self.iommu.alloc_domain(kind, parent=parent)
            dom.map(iova, gpa, size)
        else:
            dom = self.iommu.alloc_domain(kind)
            if kind is not DomainKind.PASS_THROUGH:
                dom.map(iova, hpa, size)
        await self.iommu.bind_pasid(self.sid, pasid, dom, supervisor=pmr)  # PMR needs SRE
        sb.spaces.map(pasid, iova, hpa, size)
        irq = self.bus.alloc_irq(lambda m: self.irqs.append((m.addr, m.data)))
        ctx = AdiCtx(adi, pasid, iova, hpa, size, ring_log2, dom, irq, group, pmr)
        self.adis[adi] = ctx
        cfg = AdiConfig(ring_base=ctx.ring + ring_misalign, ring_size=ctx.ring_size, cpl_base=ctx.cpl, pasid=pasid,
                        pmr=pmr, rx_base=ctx.rx, rx_slots=1 << RX_SLOTS_LOG2, rx_slot_bytes=1 << RX_SLOT_LOG2)
        await self.ctl.configure(adi, cfg)
        await self.ctl.set_ims(adi, irq, masked=ims_masked)
        await self.ctl.set_switch_port(adi, group, adi, send=send, recv=recv)
        await self.ctl.set_forward(adi, adi)
        m = sb.model
        c = m.adis[adi].cfg
        c.ring_base, c.log2_entries, c.cpl_base = cfg.ring_base, ring_log2, ctx.cpl
        c.rx_base, c.rx_log2_slots, c.rx_log2_slot_bytes = ctx.rx, RX_SLOTS_LOG2, RX_SLOT_LOG2
        m.set_pasid(adi, pasid, pmr=pmr)
        c.ims_addr, c.ims_data, c.ims_mask = irq.addr, irq.data, ims_masked
        c.group, c.port_addr, c.send_en, c.recv_en = group, adi, send, recv
        m.set_forwarding(adi, adi)
        if enable:
            await self.enable(adi)
        return ctx

    async def enable(self, adi: int) -> bool:
        """ENABLE; returns whether the ADI is ENABLED afterwards (model mirrored)."""
        self.model.command(adi, Cmd.ENABLE)
        try:
            await self.ctl.enable(adi)
        except PfError as exc:
            log.info("ADI %d: %s", adi, exc)
            return False
        return True

    async def reset(self, adi: int) -> None:
        await self.ctl.reset(adi)
        self.model.command(adi, Cmd.RESET)
        self.adis[adi].tail = 0
        self.adis[adi].outstanding.clear()

    # ------------------------------------------------------------------ memory
    def write(self, adi: int, iova: int, data: bytes) -> None:
        """Guest store into the ADI's memory: real host memory and the model's copy."""
        pasid = self.adis[adi].pasid
        sp = self.model.spaces
        pos = 0
        while pos < len(data):
            a = iova + pos
            n = min(len(data) - pos, 4096 - (a & 0xFFF))
            hpa = sp.translate(pasid, a, True)
            assert hpa is not None, f"ADI {adi}: IOVA 0x{a:x} not mapped"
            self.mem.write(hpa, data[pos : pos + n])
            sp.mem.write(hpa, data[pos : pos + n])
            pos += n

    def read(self, adi: int, iova: int, length: int) -> bytes:
        hpa = self.model.spaces.translate(self.adis[adi].pasid, iova, False)
        assert hpa is not None
        return self.mem.read(hpa, length)

    # ------------------------------------------------------------------ fast path
    async def submit(self, adi: int, descs: Iterable[Descriptor], *, ring: bool = True) -> list[int]:
        """Write descriptors at the tail (zeroing their records), ring the doorbell."""
        ctx = self.adis[adi]
        slots = []
        for d in descs:
            idx = ctx.tail
            self.write(adi, ctx.ring + DESC_SIZE * idx, d.pack())
            self.write(adi, ctx.cpl + CPL_SIZE * idx, bytes(CPL_SIZE))
            slots.append(idx)
            ctx.tail = (ctx.tail + 1) % ctx.ring_size
        assert len(ctx.outstanding) + len(slots) < ctx.ring_size, "ring overrun by the test"
        ctx.outstanding += slots
        if ring:
            await self.doorbell(adi, ctx.tail, slots)
        return slots

    async def doorbell(self, adi: int, tail: int, slots: Iterable[int] = ()) -> None:
        await self.bus.mmio_write(self.pf.portal_addr(adi), tail.to_bytes(4, "little"))
        self.model.doorbell(adi, tail, slots)

    async def rx_doorbell(self, adi: int, head: int) -> None:
        await self.bus.mmio_write(self.pf.portal_addr(adi) + 4, head.to_bytes(4, "little"))
        self.model.model.rx_doorbell(adi, head)

    # ------------------------------------------------------------------ waiting and checking
    def record(self, adi: int, idx: int) -> bytes:
        ctx = self.adis[adi]
        return self.read(adi, ctx.cpl + CPL_SIZE * idx, CPL_SIZE)

    async def wait_records(self, items: list[tuple[int, int]], *, timeout_us: float = 2000,
                           poll_ns: int = 1000, done: Callable[[tuple[int, int]], bool] | None = None) -> None:
        """Wait until every (adi, slot) whose record the model says is written has a record."""
        want = [it for it in items if done is None or done(it)]
        t_end = get_sim_time("ns") + timeout_us * 1000
        while True:
            left = [(a, i) for a, i in want if self.record(a, i)[0] == 0]
            if not left:
                break
            if get_sim_time("ns") > t_end:
                raise AssertionError(f"{len(left)} completion records not written after {timeout_us} us: "
                                     f"{left[:8]}")
            await Timer(poll_ns, unit="ns")

    async def read_regs(self, adi: int) -> AdiRegs:
        p = self.bar0.adi_page(adi)
        st = AdiPage.STATUS.unpack(await p.read(AdiPage.STATUS))
        return AdiRegs(st["state"], st["err"], await p.read(AdiPage.HEAD), await p.read(AdiPage.CNT_DESC),
                       await p.read(AdiPage.CNT_BYTES), await p.read(AdiPage.ERR_INFO))

    async def wait_idle(self, adis: Iterable[int], timeout_us: float = 500) -> None:
        """Until no listed ADI is busy (requests outstanding) or DRAINING."""
        t_end = get_sim_time("ns") + timeout_us * 1000
        for a in adis:
            while True:
                st = AdiPage.STATUS.unpack(await self.bar0.adi_page(a).read(AdiPage.STATUS))
                if not st["busy"] and st["state"] != AdiState.DRAINING:
                    break
                if get_sim_time("ns") > t_end:
                    raise AssertionError(f"ADI {a} still busy after {timeout_us} us: {st}")
                await Timer(1000, unit="ns")

    async def check(self, adis: Iterable[int] | None = None, *, settle_ns: int = 2000, memory: bool = True,
                    ignore: Iterable[tuple[int, int]] = ()) -> None:
        """Wait for every submitted record (of ``adis``, default all), then compare records,
        registers, IMS messages and (``memory``) the whole data window with the model."""
        sb = self.model
        sel = None if adis is None else set(adis)
        adis = sorted(self.adis) if adis is None else sorted(adis)
        items = sb.expect_records(sel)
        await self.wait_records(items, done=lambda it: sb.records.expected[it].status != 0)
        await self.wait_idle(adis)
        await Timer(settle_ns, unit="ns")  # interrupts trail the records on the posted stream
        for a, i in items:
            sb.observe_record(a, i, self.record(a, i))
        sb.expect_regs(adis)
        for a in adis:
            sb.observe_regs(a, await self.read_regs(a))
        sb.expect_ims(sel)
        mine = {(self.adis[a].irq.addr, self.adis[a].irq.data) for a in adis}
        sb.observe_ims([m for m in self.irqs if m in mine])
        self.irqs = [m for m in self.irqs if m not in mine]
        if memory:
            sb.check_memory(self.mem, DATA_LO, DATA_HI, ignore=ignore)
        for a in adis:
            self.adis[a].outstanding.clear()
        sb.assert_drained()
        self.env.check_link_clean()

    def resync_model(self) -> None:
        """A fresh scoreboard from the current host memory and the ADIs' configuration (after a
        phase the model cannot predict step by step); every ADI must be DISABLED (reset)."""
        old = self.model
        new = AdiScoreboard(self.num_adi, copy.deepcopy(self.mem))
        new.spaces.maps = copy.deepcopy(old.spaces.maps)
        for a in self.adis:
            new.model.adis[a].cfg = copy.deepcopy(old.model.adis[a].cfg)
        new.model.fwd = list(old.model.fwd)
        new.outcomes = old.outcomes
        self.sb = new

    async def set_bus_master(self, on: bool) -> None:
        cmd = int.from_bytes(await self.bus.cfg_read(self.sid, 4, 2), "little")
        cmd = cmd | 0x4 if on else cmd & ~0x4
        await self.bus.cfg_write(self.sid, 4, cmd.to_bytes(2, "little"))

    async def set_mps_mrrs(self, mps_code: int, mrrs_code: int) -> None:
        """DevCtl MPS (128 << code) and MRRS (128 << code) of the endpoint."""
        cap = self.pf.caps.pcie_cap
        assert cap is not None
        raw = int.from_bytes(await self.bus.cfg_read(self.sid, cap + 8, 2), "little")
        raw = (raw & ~0x70E0) | (mrrs_code << 12) | (mps_code << 5)
        await self.bus.cfg_write(self.sid, cap + 8, raw.to_bytes(2, "little"))
        log.info("MPS %d, MRRS %d", 128 << mps_code, 128 << mrrs_code)

    async def pf_last_err(self) -> tuple[int, int]:
        v = Bar0.LAST_ERR.unpack(await self.bar0.read(Bar0.LAST_ERR))
        return v["adi"], v["err"]


def is_msi(f: Any, stream: str) -> bool:
    """An interrupt message at the RTL boundary (``EpDevice.tap``): a 3-DW MWr to 0xFEEx_xxxx
    without a PASID prefix (IMS or MSI-X)."""
    return stream == "tx_wr_req_tlp" and not f.prfx and f.header_dws == 3 and (f.hdr >> 52) & 0xFFF == 0xFEE


def snapshot_outside(mem: HostMemory, lo: int, hi: int) -> dict[int, bytes]:
    """Every populated page of ``mem`` outside ``[lo, hi)``."""
    return {p: bytes(b) for p, b in mem._pages.items() if not lo >> 12 <= p < hi >> 12}


def changed_outside(mem: HostMemory, before: dict[int, bytes], lo: int, hi: int) -> list[int]:
    now = snapshot_outside(mem, lo, hi)
    return sorted(p << 12 for p in set(before) | set(now) if before.get(p, bytes(4096)) != now.get(p, bytes(4096)))


def random_desc(sys_: AdiSystem, adi: int, *, send_to: int | None = None, ops: tuple[str, ...] = ("COPY", "FILL"),
                max_len: int = 6000) -> Descriptor:
    """A random legal COPY/FILL inside the ADI's data area (sources in the first half,
    destinations in the second), or a SEND of up to one receive slot to switch address ``send_to``."""
    from siov_sim.model.adi import RX_HDR_SIZE, DescFlags, Opcode

    rng = sys_.rng
    ctx = sys_.adis[adi]
    half = ctx.data_size // 2
    flags = int(DescFlags.INTR) if rng.random() < 0.3 else 0
    tag = rng.getrandbits(32)
    if send_to is not None:
        n = rng.randint(1, (1 << RX_SLOT_LOG2) - RX_HDR_SIZE)
        src = ctx.data + rng.randrange(half - n)
        return Descriptor(Opcode.SEND, n, src, send_to, tag, flags)
    op = rng.choice(ops)
    n = min(half, rng.choice([rng.randint(1, 64), rng.randint(1, 600), rng.randint(1, min(max_len, half)), 4096]))
    dst = ctx.data + half + rng.randrange(half - n + 1)
    if op == "FILL":
        return Descriptor(Opcode.FILL, n, rng.getrandbits(64), dst, tag, flags)
    return Descriptor(Opcode.COPY, n, ctx.data + rng.randrange(half - n + 1), dst, tag, flags)


def fill_sources(sys_: AdiSystem, adi: int) -> None:
    ctx = sys_.adis[adi]
    sys_.write(adi, ctx.data, sys_.rng.randbytes(ctx.data_size // 2))
