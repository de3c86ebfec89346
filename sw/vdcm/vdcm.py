"""VDCM: the mdev parent of the SIOV PF. Composes VDEVs from ADIs, owns the PASID space.

Linux flow it mirrors (``drivers/vfio/mdev``, idxd's VDCM patches)::

    cat  .../mdev_supported_types/<type>/available_instances   -> supported_types()
    echo <uuid> > .../mdev_supported_types/<type>/create        -> await create(type_id, uuid)
    VFIO group of the mdev -> container -> SET_IOMMU            -> vdev.attach_domain(ss domain)
    echo 1 > /sys/bus/mdev/devices/<uuid>/remove                -> await remove(uuid)

``remove`` keeps the architecture's teardown order: drain every ADI (device reports nothing
outstanding) -> unbind the PASID (PASID-cache + IOTLB invalidation, wait descriptor completes)
-> free IMS vectors, PASID, ADIs. PASIDs are handed out cyclically, so a freed PASID is not
reused soon: stale DMA tagged with it faults instead of landing in a new VDEV.
"""

from __future__ import annotations

import errno
import logging
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass

from siov_sim.sw.driver.iommu_api import IoDomain
from siov_sim.sw.driver.pf import PfDriver
from siov_sim.sw.vdcm.types import DEFAULT_TYPES, MdevType, MdevTypeInfo
from siov_sim.sw.vdcm.vdev import Vdev
from siov_sim.sw.vfio.device_ops import VfioError
from siov_sim.sw.vfio.vfio import Vfio, VfioDevice

log = logging.getLogger(__name__)

PASID_MAX = (1 << 20) - 1


class CyclicIdAllocator:
    """IDs in ``[lo, hi]`` handed out round-robin (Linux ``idr_alloc_cyclic``)."""

    def __init__(self, lo: int, hi: int) -> None:
        if not 0 <= lo <= hi:
            raise ValueError(f"bad id range [{lo}, {hi}]")
        self.lo, self.hi = lo, hi
        self._next = lo
        self._used: set[int] = set()

    def alloc(self) -> int:
        span = self.hi - self.lo + 1
        if len(self._used) >= span:
            raise VfioError(errno.ENOSPC, f"all {span} ids in use")
        i = self._next
        while i in self._used:
            i = self.lo if i == self.hi else i + 1
        self._used.add(i)
        self._next = self.lo if i == self.hi else i + 1
        return i

    def free(self, i: int) -> None:
        if i not in self._used:
            raise ValueError(f"id {i} not allocated")
        self._used.remove(i)

    def in_use(self) -> int:
        return len(self._used)


@dataclass(frozen=True, slots=True)
class VdcmUsage:
    vdevs: int
    adis_in_use: int
    pasids_in_use: int
    switch_addrs_in_use: int
    groups_in_use: int


class Vdcm:
    def __init__(
        self,
        pf: PfDriver,
        *,
        vfio: Vfio | None = None,
        types: Sequence[MdevType] = DEFAULT_TYPES,
        pasid_range: tuple[int, int] = (1, PASID_MAX),
    ) -> None:
        self.pf = pf
        self.vfio = vfio
        self._types = {t.type_id: t for t in types}
        self._pasids = CyclicIdAllocator(*pasid_range)
        self._sw_addrs = CyclicIdAllocator(0, pf.adi.num_switch_addrs - 1)
        self._group_ids = CyclicIdAllocator(1, 0xFFF)  # sw_port.group is 12 bits
        self._networks: dict[str, tuple[int, int]] = {}  # name -> (group, members)
        self._slots = CyclicIdAllocator(1, 31)  # virtual device number on the guest's bus 0
        self._vdevs: dict[str, Vdev] = {}
        self._groups: dict[str, int] = {}
        self._network_of: dict[str, str | None] = {}
        self._sva: dict[str, VfioDevice] = {}

    # ---- mdev parent ------------------------------------------------------------------------------
    def supported_types(self) -> list[MdevTypeInfo]:
        free = self.pf.free_adi_count()
        return [
            MdevTypeInfo(t.type_id, t.name, t.description, t.device_api, free // t.num_queues)
            for t in self._types.values()
        ]

    def available_instances(self, type_id: str) -> int:
        return self.pf.free_adi_count() // self._type(type_id).num_queues

    def _type(self, type_id: str) -> MdevType:
        t = self._types.get(type_id)
        if t is None:
            raise VfioError(errno.EINVAL, f"no mdev type {type_id!r}")
        return t

    async def create(
        self, type_id: str, uuid: str, *, domain: IoDomain | None = None, network: str | None = None
    ) -> Vdev:
        """``echo <uuid> > mdev_supported_types/<type_id>/create``.

        With ``domain`` the PASID entry is written at once (SVA: the process's first-stage
        table; nested: a nested domain); otherwise VFIO attaches its container's domain later.
        VDEVs on the same ``network`` share a switch group and may SEND to each other; without
        one a VDEV gets a private group (it can only SEND to itself).
        """
        try:
            uuid = str(uuidlib.UUID(uuid))
        except ValueError as exc:
            raise VfioError(errno.EINVAL, f"{uuid!r} is not a UUID") from exc
        if uuid in self._vdevs:
            raise VfioError(errno.EEXIST, f"mdev {uuid} exists")
        t = self._type(type_id)
        if self.pf.free_adi_count() < t.num_queues:
            raise VfioError(errno.ENOSPC, f"type {type_id}: no instance available")
        adis = self.pf.alloc_adis(t.num_queues)
        pasid = self._pasids.alloc()
        addrs = [self._sw_addrs.alloc() for _ in adis]
        group = self._join_network(network)
        slot = self._slots.alloc() if self._slots.in_use() < 31 else 0
        vdev = Vdev(
            uuid=uuid,
            mdev_type=t,
            pf=self.pf,
            adis=adis,
            pasid=pasid,
            vbdf=slot << 3,
            group=group,
            sw_addrs=addrs,
        )
        forwarded: list[int] = []
        try:
            for adi, addr in zip(adis, addrs, strict=True):  # known state whatever came before
                await self.pf.adi.reset(adi)
                await self.pf.adi.set_ims(adi, None, masked=True)
                await self.pf.adi.set_switch_port(adi, group, addr, send=False, recv=False)
                forwarded.append(addr)
                await self.pf.adi.set_forward(addr, adi)
            if domain is not None:
                await vdev.attach_domain(domain)
        except BaseException:
            # Undo in reverse: no switch address may keep forwarding into ADIs we hand back.
            for addr in forwarded:
                await self.pf.adi.set_forward(addr, None)
            self.pf.free_adis(adis)
            self._pasids.free(pasid)
            for addr in addrs:
                self._sw_addrs.free(addr)
            self._leave_network(network, group)
            if slot:
                self._slots.free(slot)
            raise
        self._network_of[uuid] = network
        self._vdevs[uuid] = vdev
        if self.vfio is not None:
            self._groups[uuid] = self.vfio.register_group([vdev])
        log.info("created %s type %s: ADIs %s PASID %d group %d", uuid, type_id, adis, pasid, group)
        return vdev

    async def remove(self, uuid: str) -> None:
        """``echo 1 > /sys/bus/mdev/devices/<uuid>/remove``, in the architecture's teardown order."""
        vdev = self.get(uuid)
        gid = self._groups.get(uuid)
        if self.vfio is not None and gid is not None and self.vfio.group_in_use(gid):
            vdev.signal_request()  # VFIO REQ irq: ask the user to release the device
            raise VfioError(errno.EBUSY, f"mdev {uuid} is in use by a VFIO user")
        sva = self._sva.pop(uuid, None)
        if sva is not None:  # the SVA user is told nothing more: its fd is closed under it
            await sva.close()
            if self.vfio is not None and gid is not None:
                self.vfio.release_group(gid)
        # Nobody may keep sending into the queues we are about to free.
        for addr in vdev.sw_addrs:
            await self.pf.adi.set_forward(addr, None)
        # 1. drain, 2. unbind PASID (invalidate + wait); detach_domain does both in order.
        await vdev.quiesce_all()
        await vdev.detach_domain()
        # 3. interrupts, then identifiers and ADIs.
        await vdev.release_irqs()
        if self.vfio is not None and gid is not None:
            self.vfio.unregister_group(gid)
            del self._groups[uuid]
        self._pasids.free(vdev.pasid)
        for addr in vdev.sw_addrs:
            self._sw_addrs.free(addr)
        self._leave_network(self._network_of.pop(uuid), vdev.group)
        if vdev.vbdf:
            self._slots.free(vdev.vbdf >> 3)
        self.pf.free_adis(vdev.adis)
        del self._vdevs[uuid]
        log.info("removed %s: ADIs %s and PASID %d freed", uuid, vdev.adis, vdev.pasid)

    def get(self, uuid: str) -> Vdev:
        vdev = self._vdevs.get(uuid)
        if vdev is None:
            raise VfioError(errno.ENODEV, f"no mdev {uuid}")
        return vdev

    def vdevs(self) -> list[Vdev]:
        return list(self._vdevs.values())

    def group_id(self, uuid: str) -> int:
        gid = self._groups.get(uuid)
        if gid is None:
            raise VfioError(errno.ENODEV, f"mdev {uuid} has no VFIO group")
        return gid

    def usage(self) -> VdcmUsage:
        return VdcmUsage(
            vdevs=len(self._vdevs),
            adis_in_use=self.pf.num_adis - self.pf.free_adi_count(),
            pasids_in_use=self._pasids.in_use(),
            switch_addrs_in_use=self._sw_addrs.in_use(),
            groups_in_use=self._group_ids.in_use(),
        )

    # ---- SVA: user opens the device bound to its own address space (idxd user wq style) -----------
    async def open_sva(self, uuid: str, process_domain: IoDomain) -> VfioDevice:
        """Bind the VDEV's PASID to a process page table (first stage) and return a device handle.

        The analogue of opening idxd's ``/dev/dsa/wqX.Y``, which calls ``iommu_sva_bind_device``.
        SVA use and VFIO use exclude each other (in Linux the device is bound to one driver or
        the other): EBUSY while its VFIO group is open or in a container, and while it is open
        for SVA its group cannot be opened.
        """
        vdev = self.get(uuid)
        gid = self._groups.get(uuid)
        if uuid in self._sva:
            raise VfioError(errno.EBUSY, f"mdev {uuid} already open for SVA")
        if vdev.attached:
            raise VfioError(errno.EBUSY, f"mdev {uuid} is attached to a page table already")
        if self.vfio is not None and gid is not None:
            self.vfio.claim_group(gid, f"SVA ({uuid})")  # EBUSY if VFIO has it
        try:
            await vdev.attach_domain(process_domain)
        except BaseException:
            if self.vfio is not None and gid is not None:
                self.vfio.release_group(gid)
            raise
        dev = VfioDevice(vdev, None, self.vfio.eventfds if self.vfio is not None else None)
        self._sva[uuid] = dev
        return dev

    async def close_sva(self, uuid: str) -> None:
        dev = self._sva.pop(uuid, None)
        if dev is None:
            raise VfioError(errno.EBADF, f"mdev {uuid} not open for SVA")
        await dev.close()  # interrupts off, reset, mappings revoked
        vdev = self.get(uuid)
        await vdev.detach_domain()  # drain, then unbind + invalidate
        gid = self._groups.get(uuid)
        if self.vfio is not None and gid is not None:
            self.vfio.release_group(gid)

    # ---- embedded switch policy (the host admin's vswitch configuration) ---------------------------
    def _join_network(self, network: str | None) -> int:
        if network is None:
            return self._group_ids.alloc()
        group, members = self._networks.get(network, (0, 0))
        if not members:
            group = self._group_ids.alloc()
        self._networks[network] = (group, members + 1)
        return group

    def _leave_network(self, network: str | None, group: int) -> None:
        if network is None:
            self._group_ids.free(group)
            return
        _, members = self._networks[network]
        if members == 1:
            del self._networks[network]
            self._group_ids.free(group)
        else:
            self._networks[network] = (group, members - 1)

    def switch_addr(self, uuid: str, queue: int = 0) -> int:
        """The switch address a peer names in a SEND descriptor to reach ``queue`` of ``uuid``."""
        vdev = self.get(uuid)
        if not 0 <= queue < vdev.num_queues:
            raise VfioError(errno.EINVAL, f"{uuid} has no queue {queue}")
        return vdev.sw_addrs[queue]
