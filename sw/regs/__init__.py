"""The endpoint's registers for host software, generated from ``rtl/regs/ep_regs.rdl``.

``Bar0`` (PF globals, MSI-X), ``AdiPage`` (one per ADI at ``ADIS_BASE + n * ADIS_STRIDE`` in BAR0),
``SwitchFwd`` (forwarding entry n at ``SWITCH_BASE + n * SWITCH_STRIDE``) and ``PortalPage`` (BAR2,
one page per ADI) come from ``_generated/ep_regs.py``. ``RegWindow`` reads and writes them through
a :class:`~siov_sim.sw.bus.HostBus` at a base address (a BAR, or one page/entry inside it)::

    bar0 = RegWindow(bus, bar0_addr)
    adi = bar0.adi_page(5)
    await adi.write(AdiPage.RING_SIZE, AdiPage.RING_SIZE.pack(log2_entries=6))
    state = AdiPage.STATUS.field("state").get(await adi.read(AdiPage.STATUS))
"""

from __future__ import annotations

from siov_sim.sw.bus import HostBus, mmio_read32, mmio_write32
from siov_sim.sw.regs._generated.ep_regs import (
    ADIS_BASE,
    ADIS_COUNT_MAX,
    ADIS_STRIDE,
    PORTAL_STRIDE,
    SWITCH_BASE,
    SWITCH_STRIDE,
    AdiPage,
    Bar0,
    PortalPage,
    SwitchFwd,
)
from siov_sim.sw.regs.base import Field, Reg

__all__ = [
    "ADIS_BASE",
    "ADIS_COUNT_MAX",
    "ADIS_STRIDE",
    "PORTAL_STRIDE",
    "SWITCH_BASE",
    "SWITCH_STRIDE",
    "AdiPage",
    "Bar0",
    "Field",
    "PortalPage",
    "Reg",
    "RegWindow",
    "SwitchFwd",
]


class RegWindow:
    """Registers at ``base`` on ``bus`` (32-bit accesses only)."""

    def __init__(self, bus: HostBus, base: int) -> None:
        self.bus = bus
        self.base = base

    async def read(self, reg: Reg) -> int:
        return await mmio_read32(self.bus, self.base + reg.offset)

    async def write(self, reg: Reg, value: int) -> None:
        await mmio_write32(self.bus, self.base + reg.offset, value)

    async def read_fields(self, reg: Reg) -> dict[str, int]:
        return reg.unpack(await self.read(reg))

    async def modify(self, reg: Reg, **fields: int) -> None:
        """Read-modify-write of the named fields (not for rw1c or write-only registers)."""
        value = await self.read(reg)
        for name, v in fields.items():
            value = reg.field(name).put(value, v)
        await self.write(reg, value)

    def adi_page(self, adi: int) -> RegWindow:
        """BAR0 window of ADI ``adi``'s configuration page (self must be the BAR0 window)."""
        return RegWindow(self.bus, self.base + ADIS_BASE + adi * ADIS_STRIDE)

    def switch_entry(self, addr: int) -> RegWindow:
        """BAR0 window of forwarding entry ``addr`` (self must be the BAR0 window)."""
        return RegWindow(self.bus, self.base + SWITCH_BASE + addr * SWITCH_STRIDE)

    def portal(self, adi: int, page_size: int = PORTAL_STRIDE) -> RegWindow:
        """BAR2 portal page of ADI ``adi`` (self must be the BAR2 window)."""
        return RegWindow(self.bus, self.base + adi * page_size)
