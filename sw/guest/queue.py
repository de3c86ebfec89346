"""The fast-path core shared by every driver kind: one VDEV queue (an ADI behind it).

Set-up goes through the slow path (VDEV BAR0 registers, trapped by the VDCM); submission is
descriptor writes into the ring in the driver's own memory plus one doorbell store to the
mmapped portal page; completions are polled from the completion records or signalled by the
queue's MSI-X vector (an IMS message underneath).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from siov_sim.sw.bus import Runtime
from siov_sim.sw.driver.abi import (
    CPL_SIZE,
    DESC_SIZE,
    RX_HDR_SIZE,
    SWITCH_ADDR_MASK,
    TAG_MASK,
    AdiState,
    Completion,
    CplStatus,
    DescFlags,
    Descriptor,
    Opcode,
    RxHeader,
    error_name,
)
from siov_sim.sw.guest.memory import DmaSpace
from siov_sim.sw.regs import PortalPage
from siov_sim.sw.vdcm.vdev import CTRL_ENABLE, CTRL_RESET, Q_BASE, Q_STRIDE, QREG
from siov_sim.sw.vfio import uapi as u
from siov_sim.sw.vfio.device_ops import MmioMapping
from siov_sim.sw.vfio.vfio import VfioDevice

log = logging.getLogger(__name__)
BAR0 = u.VFIO_PCI_BAR0_REGION_INDEX


class QueueError(Exception):
    """The queue's ADI went to ERROR, or a completion did not arrive in time.

    ``error`` is the device's :class:`~siov_sim.model.adi.formats.ErrorCode` (0 for a timeout
    while the ADI is still running)."""

    def __init__(self, msg: str, state: int = 0, error: int = 0) -> None:
        super().__init__(msg)
        self.state = state
        self.error = error


@dataclass(slots=True)
class QueueStats:
    ops: int = 0
    bytes: int = 0
    irqs: int = 0
    polls: int = 0
    received: int = 0
    dropped: int = 0


class VdevQueue:
    def __init__(
        self,
        dev: VfioDevice,
        index: int,
        mem: DmaSpace,
        portal: MmioMapping,
        runtime: Runtime,
        *,
        ring_size: int = 64,
        rx_slots: int = 0,
        rx_slot_bytes: int = 2048,
        use_irq: bool = False,
        poll_ns: float = 200.0,
        max_poll_ns: float = 3200.0,
        watchdog_ns: float = 50_000.0,
        timeout_ns: float = 5_000_000.0,
    ) -> None:
        self.dev = dev
        self.index = index
        self.mem = mem
        self.portal = portal
        self.runtime = runtime
        self.ring_size = ring_size
        self.rx_slots = rx_slots
        self.rx_slot_bytes = rx_slot_bytes
        self.use_irq = use_irq
        self.poll_ns = poll_ns
        self.max_poll_ns = max_poll_ns
        self.watchdog_ns = watchdog_ns
        self.timeout_ns = timeout_ns
        self.ring = self.cpl = self.rx = 0
        self.tail = 0
        self.rx_head = 0
        self._tag = 0
        self._irq = runtime.event()
        self.stats = QueueStats()
        self.log = logging.getLogger(f"{__name__}.{dev.name[:8]}.q{index}")

    def _reg(self, r: QREG) -> int:
        return Q_BASE + self.index * Q_STRIDE + r

    async def setup(self) -> None:
        """Allocate rings in the driver's memory and program them through the slow path."""
        self.ring = await self.mem.alloc(self.ring_size * DESC_SIZE)
        self.cpl = await self.mem.alloc(self.ring_size * CPL_SIZE)
        if self.rx_slots:
            self.rx = await self.mem.alloc(self.rx_slots * self.rx_slot_bytes)
        w32, w64 = self.dev.region_write32, self.dev.region_write64
        await w64(BAR0, self._reg(QREG.RING_BASE_LO), self.ring)
        await w32(BAR0, self._reg(QREG.RING_SIZE), self.ring_size)
        await w64(BAR0, self._reg(QREG.CPL_BASE_LO), self.cpl)
        await w64(BAR0, self._reg(QREG.RX_BASE_LO), self.rx)
        await w32(BAR0, self._reg(QREG.RX_SIZE), self.rx_slots)
        await w32(BAR0, self._reg(QREG.RX_SLOT_BYTES), self.rx_slot_bytes)
        await w32(BAR0, self._reg(QREG.CTRL), CTRL_ENABLE)
        self.tail = self.rx_head = 0

    async def teardown(self) -> None:
        await self.dev.region_write32(BAR0, self._reg(QREG.CTRL), CTRL_RESET)
        for addr in (self.ring, self.cpl, self.rx):
            if addr:
                await self.mem.free(addr)
        self.ring = self.cpl = self.rx = 0

    async def reset(self) -> None:
        """Recover from ERROR: queue reset through the slow path, then the same rings again."""
        await self.dev.region_write32(BAR0, self._reg(QREG.CTRL), CTRL_RESET)
        w32, w64 = self.dev.region_write32, self.dev.region_write64
        await w64(BAR0, self._reg(QREG.RING_BASE_LO), self.ring)
        await w32(BAR0, self._reg(QREG.RING_SIZE), self.ring_size)
        await w64(BAR0, self._reg(QREG.CPL_BASE_LO), self.cpl)
        await w64(BAR0, self._reg(QREG.RX_BASE_LO), self.rx)
        await w32(BAR0, self._reg(QREG.RX_SIZE), self.rx_slots)
        await w32(BAR0, self._reg(QREG.RX_SLOT_BYTES), self.rx_slot_bytes)
        self.mem.write(self.cpl, bytes(self.ring_size * CPL_SIZE))
        await w32(BAR0, self._reg(QREG.CTRL), CTRL_ENABLE)
        self.tail = self.rx_head = 0

    def on_irq(self) -> None:
        """The queue's interrupt callback (the eventfd the driver registered)."""
        self.stats.irqs += 1
        self._irq.set()

    async def status(self) -> tuple[AdiState, int]:
        v = await self.portal.read32(PortalPage.STATUS.offset)
        f = PortalPage.STATUS
        return AdiState(f.field("state").get(v)), f.field("err").get(v)

    # ---- fast path ----------------------------------------------------------------------------
    async def submit(self, desc: Descriptor) -> int:
        """Write the descriptor at the tail, ring the doorbell; returns the ring slot."""
        slot = self.tail
        if self.use_irq:
            desc = dataclasses.replace(desc, flags=desc.flags | DescFlags.INTR)
        self.mem.write(self.cpl + slot * CPL_SIZE, bytes(CPL_SIZE))
        self.mem.write(self.ring + slot * DESC_SIZE, desc.pack())
        self.tail = (self.tail + 1) % self.ring_size
        await self.portal.write32(PortalPage.DOORBELL.offset, self.tail)
        return slot

    async def wait(self, slot: int) -> Completion:
        """Completion record of ``slot``: by interrupt (the queue's vector wakes us, as a driver
        blocked on its eventfd) or by polling the record (``poll_ns`` at first, doubling up to
        ``max_poll_ns`` while nothing completes, as an adaptive poll-mode driver backs off).
        Without progress for ``watchdog_ns`` the driver reads the ADI's state (errors that write
        no record raise no interrupt). Raises :class:`QueueError` when the ADI is in ERROR
        without writing the record, or at the timeout."""
        rt = self.runtime
        now = rt.now_ns()
        deadline = now + self.timeout_ns
        watchdog = now + self.watchdog_ns
        interval = self.poll_ns
        while True:
            if self._done(slot):
                return Completion.unpack(self.mem.read(self.cpl + slot * CPL_SIZE, CPL_SIZE))
            woke = False
            if self.use_irq:
                self._irq.clear()
                if self._done(slot):
                    continue
                woke = await rt.wait_for(self._irq, min(watchdog, deadline) - rt.now_ns())
            else:
                self.stats.polls += 1
                await rt.sleep(interval)
                interval = min(2 * interval, self.max_poll_ns)
            now = rt.now_ns()
            timed_out = now >= deadline
            if self._done(slot):
                continue
            if woke or timed_out or now >= watchdog:  # the ADI may have stopped on an error
                watchdog = now + self.watchdog_ns
                state, err = await self.status()
                if state is AdiState.ERROR:
                    raise QueueError(f"queue {self.index} in ERROR ({error_name(err)})", int(state), err)
                if timed_out:
                    raise QueueError(f"queue {self.index}: slot {slot} did not complete", int(state), err)

    def _done(self, slot: int) -> bool:
        return self.mem.read(self.cpl + slot * CPL_SIZE, 1)[0] != CplStatus.PENDING

    async def run(self, desc: Descriptor) -> Completion:
        rec = await self.wait(await self.submit(desc))
        await self._account(desc, rec)
        return rec

    async def _account(self, desc: Descriptor, rec: Completion) -> None:
        """SUCCESS counts; DROPPED (SEND, receiver's ring full: ``error`` = RX_FULL) is counted
        and returned, the ADI keeps running; ERROR raises :class:`QueueError` with the record's
        error code."""
        if rec.status == CplStatus.SUCCESS:
            self.stats.ops += 1
            self.stats.bytes += rec.bytes_done
        elif rec.status == CplStatus.DROPPED:
            self.stats.dropped += 1
        else:
            raise await self._failure(desc, rec)

    async def run_batch(self, descs: list[Descriptor]) -> list[Completion]:
        """Post up to ring_size - 1 descriptors with one doorbell, then collect every record."""
        if not 0 < len(descs) < self.ring_size:
            raise ValueError(f"batch of {len(descs)} does not fit a ring of {self.ring_size}")
        slots = []
        for d in descs:
            if self.use_irq and d is not descs[-1]:
                d = dataclasses.replace(d, flags=d.flags & ~int(DescFlags.INTR))  # one interrupt per batch
            elif self.use_irq:
                d = dataclasses.replace(d, flags=d.flags | DescFlags.INTR)
            slot = self.tail
            self.mem.write(self.cpl + slot * CPL_SIZE, bytes(CPL_SIZE))
            self.mem.write(self.ring + slot * DESC_SIZE, d.pack())
            self.tail = (self.tail + 1) % self.ring_size
            slots.append(slot)
        await self.portal.write32(PortalPage.DOORBELL.offset, self.tail)
        recs = [await self.wait(s) for s in slots]
        for d, rec in zip(descs, recs, strict=True):
            await self._account(d, rec)
        return recs

    def copy_desc(self, src: int, dst: int, length: int) -> Descriptor:
        return Descriptor(Opcode.COPY, length, src, dst, self._next_tag())

    def fill_desc(self, dst: int, pattern: int, length: int) -> Descriptor:
        return Descriptor(Opcode.FILL, length, pattern, dst, self._next_tag())

    def _next_tag(self) -> int:
        self._tag = (self._tag + 1) & TAG_MASK
        return self._tag

    async def copy(self, src: int, dst: int, length: int) -> Completion:
        return await self.run(Descriptor(Opcode.COPY, length, src, dst, self._next_tag()))

    async def fill(self, dst: int, pattern: int, length: int) -> Completion:
        return await self.run(Descriptor(Opcode.FILL, length, pattern, dst, self._next_tag()))

    async def send(self, src: int, length: int, switch_addr: int) -> Completion:
        """SEND ``length`` bytes at ``src`` to switch address ``switch_addr`` (descriptor dst[15:0]).
        Returns the record: SUCCESS, or DROPPED if the receiver's ring was full."""
        if not 0 <= switch_addr <= SWITCH_ADDR_MASK:
            raise ValueError(f"switch address {switch_addr} does not fit dst[15:0]")
        return await self.run(Descriptor(Opcode.SEND, length, src, switch_addr, self._next_tag()))

    async def _failure(self, desc: Descriptor, rec: Completion) -> QueueError:
        """An ERROR completion record: the reason is the record's ``error`` (the ADI's
        ``status.err`` holds the same code; it is the fallback only for a record without one)."""
        state, err = await self.status()
        code = rec.error or err
        try:
            op = Opcode(desc.opcode).name
        except ValueError:
            op = f"opcode {desc.opcode}"
        return QueueError(f"queue {self.index}: {op} failed ({error_name(code)})", int(state), code)

    async def receive(self) -> tuple[RxHeader, bytes] | None:
        """One received packet, or None if the ring is empty; frees the slot (rx doorbell)."""
        if not self.rx_slots:
            return None
        rx_tail = (await self.portal.read32(PortalPage.RX_TAIL.offset)) & 0xFFFF
        if rx_tail == self.rx_head:
            return None
        slot = self.rx + self.rx_head * self.rx_slot_bytes
        hdr = RxHeader.unpack(self.mem.read(slot, RX_HDR_SIZE))
        data = self.mem.read(slot + RX_HDR_SIZE, min(hdr.length, self.rx_slot_bytes - RX_HDR_SIZE))
        self.rx_head = (self.rx_head + 1) % self.rx_slots
        await self.portal.write32(PortalPage.RX_DOORBELL.offset, self.rx_head)
        self.stats.received += 1
        return hdr, data
