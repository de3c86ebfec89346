"""The three fast-path users of a VDEV.

* :class:`AvfGuestDriver`: a driver inside a VM (DMA addresses are GPAs; VFIO maps guest RAM at
  IOVA = GPA, so the second stage does GPA -> HPA). Its virtual MSI-X table is programmed by
  the guest; the VMM (:func:`vmm_attach`) turns VFIO interrupt callbacks into guest interrupts.
* :class:`DpdkPmd`: a host user-space poll-mode driver (IOVA = VA via MAP_DMA), polls
  completion records; interrupts optional.
* :class:`SvaUser`: a host process sharing its page table with the device (first stage walks
  it; DMA addresses are plain pointers), woken by the queue's IMS interrupt.
"""

from __future__ import annotations

import logging

from siov_sim.sw.bus import Runtime
from siov_sim.sw.driver import pci
from siov_sim.sw.guest.memory import (
    DmaSpace,
    GiovaSpace,
    GpaSpace,
    GuestTable,
    GuestVm,
    IovaSpace,
    SvaSpace,
    UserProcess,
)
from siov_sim.sw.guest.queue import VdevQueue
from siov_sim.sw.guest.viommu import GuestIommu, VmmViommu
from siov_sim.sw.vdcm.vconfig import MSIX_CAP_OFF
from siov_sim.sw.vdcm.vdev import MSIX_TABLE_OFF, VDEV_DEVICE_ID, VDEV_MAGIC, VDEV_VENDOR_ID, VREG
from siov_sim.sw.vfio import uapi as u
from siov_sim.sw.vfio.device_ops import IrqCallback, MmioMapping, VfioError
from siov_sim.sw.vfio.vfio import Vfio, VfioContainer, VfioDevice

log = logging.getLogger(__name__)
CFG = u.VFIO_PCI_CONFIG_REGION_INDEX
BAR0 = u.VFIO_PCI_BAR0_REGION_INDEX
BAR2 = u.VFIO_PCI_BAR2_REGION_INDEX


class VdevDriver:
    """Common bring-up: identify the VDEV, map its portal pages, set up the queues."""

    kind = "vdev"

    def __init__(
        self,
        dev: VfioDevice,
        mem: DmaSpace,
        runtime: Runtime,
        *,
        use_irq: bool,
        ring_size: int = 64,
        rx_slots: int = 8,
        rx_slot_bytes: int = 2048,
    ) -> None:
        self.dev = dev
        self.mem = mem
        self.runtime = runtime
        self.use_irq = use_irq
        self.ring_size = ring_size
        self.rx_slots = rx_slots
        self.rx_slot_bytes = rx_slot_bytes
        self.queues: list[VdevQueue] = []
        self.portals: list[MmioMapping] = []
        self.log = logging.getLogger(f"{__name__}.{self.kind}.{dev.name[:8]}")

    async def _cfg16(self, off: int) -> int:
        raw = await self.dev.pread(u.VFIO_PCI_INDEX_TO_OFFSET(CFG) + off, 2)
        return int.from_bytes(raw, "little")

    async def _cfg_write16(self, off: int, value: int) -> None:
        await self.dev.pwrite(u.VFIO_PCI_INDEX_TO_OFFSET(CFG) + off, value.to_bytes(2, "little"))

    async def start(self) -> None:
        vendor, device = await self._cfg16(pci.PCI_VENDOR_ID), await self._cfg16(pci.PCI_DEVICE_ID)
        if (vendor, device) != (VDEV_VENDOR_ID, VDEV_DEVICE_ID):
            raise VfioError(19, f"not a SIOV VDEV: {vendor:04x}:{device:04x}")  # ENODEV
        if await self.dev.region_read32(BAR0, VREG.ID) != VDEV_MAGIC:
            raise VfioError(19, "VDEV BAR0 magic mismatch")
        n = (await self.dev.region_read32(BAR0, VREG.CAP)) & 0xFF
        page = 4096 << (((await self.dev.region_read32(BAR0, VREG.CAP)) >> 8) & 0xF)
        cmd = await self._cfg16(pci.PCI_COMMAND)
        await self._cfg_write16(pci.PCI_COMMAND, cmd | pci.PCI_COMMAND_MEMORY | pci.PCI_COMMAND_MASTER)
        info = self.dev.get_region_info(BAR2)
        if not info.flags & u.VFIO_REGION_INFO_FLAG_MMAP:
            raise VfioError(22, "portal BAR is not mmap-able")
        for q in range(n):  # one mmap per portal page, each inside a sparse-mmap area
            self.portals.append(self.dev.mmap(u.VFIO_PCI_INDEX_TO_OFFSET(BAR2) + q * page, page))
        await self._setup_irqs(n)
        for q in range(n):
            queue = VdevQueue(
                self.dev,
                q,
                self.mem,
                self.portals[q],
                self.runtime,
                ring_size=self.ring_size,
                rx_slots=self.rx_slots,
                rx_slot_bytes=self.rx_slot_bytes,
                use_irq=self.use_irq,
            )
            await queue.setup()
            self.queues.append(queue)
        self.log.info("%d queue(s) up, interrupts %s", n, "on" if self.use_irq else "off (polling)")

    async def _setup_irqs(self, n: int) -> None:
        if self.use_irq:
            cbs: list[IrqCallback | None] = list(self._callbacks(n))
            flags = u.VFIO_IRQ_SET_DATA_EVENTFD | u.VFIO_IRQ_SET_ACTION_TRIGGER
            await self.dev.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, flags, 0, n, cbs)

    def irq_callbacks(self) -> list[IrqCallback]:
        """The per-queue interrupt handlers the VMM routes the VDEV's vectors to (one per queue);
        a destination VMM registers the same ones after a live migration."""
        return self._callbacks(len(self.queues))

    def _callbacks(self, n: int) -> list[IrqCallback]:
        def make(q: int) -> IrqCallback:
            def cb() -> None:
                self.queues[q].on_irq()

            return cb

        return [make(q) for q in range(n)]

    async def stop(self) -> None:
        for q in self.queues:
            await q.teardown()
        self.queues.clear()
        if self.use_irq:
            flags = u.VFIO_IRQ_SET_DATA_NONE | u.VFIO_IRQ_SET_ACTION_TRIGGER
            await self.dev.set_irqs(u.VFIO_PCI_MSIX_IRQ_INDEX, flags, 0, 0)
        self.portals.clear()


class AvfGuestDriver(VdevDriver):
    """Driver in a VM: GPAs for DMA, guest-programmed virtual MSI-X."""

    kind = "avf"

    def __init__(
        self,
        vm: GuestVm,
        dev: VfioDevice,
        runtime: Runtime,
        *,
        use_irq: bool = True,
        ring_size: int = 64,
        rx_slots: int = 8,
        viommu: GuestTable | None = None,
    ) -> None:
        """``viommu``: the guest's own first-stage table (nested, ``sw/guest/viommu.py``);
        without it DMA uses GPAs."""
        mem: DmaSpace = GpaSpace(vm) if viommu is None else GiovaSpace(vm, viommu)
        super().__init__(dev, mem, runtime, use_irq=use_irq, ring_size=ring_size, rx_slots=rx_slots)
        self.vm = vm

    async def _setup_irqs(self, n: int) -> None:
        # Guest side: program the virtual MSI-X table (x86 0xFEEx_xxxx, vector = 0x40 + q),
        # unmask each entry, enable MSI-X in the virtual capability. All trapped by the VDCM.
        for q in range(n):
            base = MSIX_TABLE_OFF + 16 * q
            await self.dev.region_write32(BAR0, base + 0, 0xFEE0_0000)
            await self.dev.region_write32(BAR0, base + 4, 0)
            await self.dev.region_write32(BAR0, base + 8, 0x40 + q)
            await self.dev.region_write32(BAR0, base + 12, 0)
        ctrl = await self._cfg16(MSIX_CAP_OFF + pci.PCI_MSIX_FLAGS)
        await self._cfg_write16(MSIX_CAP_OFF + pci.PCI_MSIX_FLAGS, ctrl | pci.PCI_MSIX_FLAGS_ENABLE)
        # VMM side (QEMU's vfio_msix_vector_use): an eventfd per vector, routed into the guest.
        await super()._setup_irqs(n)


class DpdkPmd(VdevDriver):
    """Host user-space poll-mode driver: IOVA = VA, completions polled."""

    kind = "pmd"

    def __init__(
        self,
        process: UserProcess,
        container: VfioContainer,
        dev: VfioDevice,
        runtime: Runtime,
        *,
        use_irq: bool = False,
        ring_size: int = 64,
        rx_slots: int = 8,
    ) -> None:
        mem = IovaSpace(process, container)
        super().__init__(dev, mem, runtime, use_irq=use_irq, ring_size=ring_size, rx_slots=rx_slots)
        self.process = process


class SvaUser(VdevDriver):
    """Host process with shared virtual addressing: descriptors carry its own pointers."""

    kind = "sva"

    def __init__(
        self,
        process: UserProcess,
        dev: VfioDevice,
        runtime: Runtime,
        *,
        use_irq: bool = True,
        ring_size: int = 64,
        rx_slots: int = 8,
    ) -> None:
        super().__init__(dev, SvaSpace(process), runtime, use_irq=use_irq, ring_size=ring_size, rx_slots=rx_slots)
        self.process = process


async def vfio_open(
    vfio: Vfio, gid: int, name: str, process: UserProcess, *, iommu_type: int = u.VFIO_TYPE1v2_IOMMU
) -> tuple[VfioContainer, VfioDevice]:
    """The standard VFIO open sequence (container, group, type1v2, device fd)."""
    container = vfio.open_container(process)
    if container.get_api_version() != u.VFIO_API_VERSION:
        raise VfioError(22, "VFIO API version mismatch")
    if not container.check_extension(iommu_type):
        raise VfioError(22, f"IOMMU type {iommu_type} not supported")
    group = vfio.open_group(gid)
    if not group.get_status() & u.VFIO_GROUP_FLAGS_VIABLE:
        raise VfioError(22, f"group {gid} not viable")
    try:
        await group.set_container(container)
        await container.set_iommu(iommu_type)
        dev = group.get_device_fd(name)
    except BaseException:
        await group.close()  # leaves the container if it got in
        raise
    await group.close()  # QEMU keeps it open; the device fd holds the group either way
    return container, dev


async def vmm_attach(
    vfio: Vfio, gid: int, name: str, vm: GuestVm, *, nesting: bool = False
) -> tuple[VfioContainer, VfioDevice]:
    """What QEMU does for ``-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/<uuid>``
    (``nesting``: the VM has a virtual IOMMU, so the container is a nesting one)."""
    iommu_type = u.VFIO_TYPE1_NESTING_IOMMU if nesting else u.VFIO_TYPE1v2_IOMMU
    container, dev = await vfio_open(vfio, gid, name, vm.vmm, iommu_type=iommu_type)
    await vm.map_ram(container)
    return container, dev


async def vmm_attach_viommu(
    vfio: Vfio, gid: int, name: str, vm: GuestVm
) -> tuple[VfioContainer, VfioDevice, GuestIommu]:
    """QEMU with ``-device intel-iommu`` on iommufd: a nesting container (guest RAM mapped at
    IOVA = GPA as the second stage), plus the vIOMMU the guest kernel drives; the guest's tables
    become the device's first stage once it attaches one (``GuestIommu.attach``)."""
    container, dev = await vmm_attach(vfio, gid, name, vm, nesting=True)
    return container, dev, GuestIommu(vm, VmmViommu(container, dev))


async def vfio_close(vfio: Vfio, gid: int, container: VfioContainer, dev: VfioDevice) -> None:
    """Close the device fd (interrupts off, reset, mmaps revoked; its group, already closed by
    :func:`vfio_open`, then leaves the container), then the container (mappings unpinned)."""
    await dev.close()
    await container.close()
