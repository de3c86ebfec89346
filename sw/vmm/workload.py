"""Traffic inside a migrating guest, every byte and every completion record checked.

One guest task per queue (each a vCPU running the driver): fill a source buffer with fresh
random bytes (CPU stores: the dirty log sees them), post a batch of COPY and FILL descriptors
to distinct destination slots with one doorbell (those pages only the device writes, so only
the IOMMU's dirty tracking sees them change), wait for the records, then check each record
(SUCCESS, its own tag, the byte count) and each destination slot (the source bytes or the FILL
pattern). The guest never learns that it moved: the same code, the same GPAs, the same
portal mappings, before, during and after a migration.

Duplicate execution cannot hide: the ADI's descriptor counter travels with the device state,
so at the end the VDEV's COMPLETED register must equal the descriptors the guest posted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from random import Random

from siov_sim.sw.driver.abi import CplStatus, fill_bytes
from siov_sim.sw.guest.queue import VdevQueue
from siov_sim.sw.vdcm.vdev import Q_BASE, Q_STRIDE, QREG
from siov_sim.sw.vfio import uapi as u
from siov_sim.sw.vmm.migrate import MigratingGuest

log = logging.getLogger(__name__)

SLOT = 1024  # destination slot per descriptor of a batch


@dataclass
class TrafficStats:
    posted: int = 0
    completed: int = 0
    bytes_checked: int = 0
    batches: int = 0
    irqs: int = 0
    errors: list[str] = field(default_factory=list)
    per_host: dict[str, int] = field(default_factory=dict)  # descriptors completed while on each host


class CheckedTraffic:
    """Random COPY/FILL batches on every queue of a :class:`MigratingGuest`, all checked."""

    def __init__(
        self,
        g: MigratingGuest,
        rng: Random,
        *,
        max_batch: int = 4,
        max_len: int = SLOT,
        think_ns: tuple[int, int] = (200, 2000),
    ) -> None:
        self.g = g
        self.think_ns = think_ns
        self.rng = rng
        self.max_batch = max_batch
        self.max_len = max_len
        self.stats = TrafficStats()
        self.stop = False
        self._buf: list[tuple[int, int]] = []  # per queue: (src GPA, dst GPA)

    async def setup(self) -> None:
        mem = self.g.driver.mem
        for _ in self.g.driver.queues:
            src = await mem.alloc(self.max_len)
            dst = await mem.alloc(SLOT * self.max_batch)
            self._buf.append((src, dst))

    async def run(self, q: int) -> None:
        """One vCPU's loop on queue ``q`` until :attr:`stop`; failures are recorded, not raised."""
        vm = self.g.vm
        vm.vcpu_enter()
        try:
            while not self.stop:
                await self.g.driver.runtime.sleep(self.rng.randrange(*self.think_ns))  # the guest's own work
                await self._batch(q)
        except Exception as exc:  # a failed check ends this vCPU's loop; the test reads .errors
            self.stats.errors.append(f"queue {q}: {type(exc).__name__}: {exc}")
            log.error("traffic on queue %d stopped: %s", q, exc)
        finally:
            vm.vcpu_exit()

    async def _batch(self, q: int) -> None:
        queue: VdevQueue = self.g.driver.queues[q]
        mem = self.g.driver.mem
        src, dst = self._buf[q]
        rng = self.rng
        n = rng.randint(1, self.max_batch)
        data = rng.randbytes(self.max_len)
        mem.write(src, data)  # guest CPU stores (dirty log); the destination slots only the device writes
        descs, want = [], []
        for i in range(n):
            length = rng.randint(1, self.max_len)
            slot = dst + i * SLOT
            if rng.random() < 0.5:
                off = rng.randrange(0, self.max_len - length + 1)
                descs.append(queue.copy_desc(src + off, slot, length))
                want.append(data[off : off + length])
            else:
                pattern = rng.getrandbits(64)
                descs.append(queue.fill_desc(slot, pattern, length))
                want.append(fill_bytes(pattern, length))
        self.stats.posted += n
        host = self.g.vm.host_name
        recs = await queue.run_batch(descs)
        for i, (d, rec) in enumerate(zip(descs, recs, strict=True)):
            if rec.status != CplStatus.SUCCESS or rec.tag != d.tag or rec.bytes_done != d.length:
                raise AssertionError(f"record {rec} for descriptor tag {d.tag} length {d.length}")
            got = mem.read(dst + i * SLOT, d.length)
            if got != want[i]:
                raise AssertionError(f"queue {q} slot {i}: data wrong after {self.g.vm.host_name}")
            self.stats.bytes_checked += d.length
        self.stats.completed += n
        self.stats.batches += 1
        self.stats.per_host[host] = self.stats.per_host.get(host, 0) + n

    async def device_completed(self) -> int:
        """Sum of the VDEV's per-queue COMPLETED registers (the ADIs' descriptor counters)."""
        total = 0
        dev = self.g.driver.dev
        for q in range(len(self.g.driver.queues)):
            total += await dev.region_read32(u.VFIO_PCI_BAR0_REGION_INDEX, Q_BASE + q * Q_STRIDE + QREG.COMPLETED)
        return total

    def irqs(self) -> int:
        return sum(q.stats.irqs for q in self.g.driver.queues)
