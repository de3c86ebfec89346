""":class:`AdiControl` over the PF control registers in BAR0 (the generated ``sw/regs`` layer)."""

from __future__ import annotations

import logging

from siov_sim.sw.bus import HostBus, MsiMessage
from siov_sim.sw.driver.abi import AdiState, Cmd, error_name
from siov_sim.sw.driver.adi import AdiConfig, AdiStatus, PfEvent
from siov_sim.sw.driver.pf import PfError, PfResources
from siov_sim.sw.regs import AdiPage, Bar0, RegWindow, SwitchFwd

log = logging.getLogger(__name__)

DEV_MAGIC = 0x53494F56  # 'SIOV'


def _log2_exact(value: int, what: str, lo: int, hi: int) -> int:
    n = value.bit_length() - 1
    if value <= 0 or value & (value - 1) or not lo <= n <= hi:
        raise PfError(f"{what} {value} is not a power of two in [2^{lo}, 2^{hi}]")
    return n


class RegAdiControl:
    """Slow-path ADI control through BAR0: ADI configuration pages, forwarding table, commands."""

    def __init__(self, bus: HostBus, res: PfResources, num_adis: int, *, poll_ns: float = 100.0) -> None:
        self.bus = bus
        self.res = res
        self.bar0 = RegWindow(bus, res.bar0.addr)
        self._num = num_adis
        self.poll_ns = poll_ns
        self.poll_limit = 100_000

    @classmethod
    async def create(cls, bus: HostBus, res: PfResources) -> RegAdiControl:
        """Check the device, wait for RAM init, enable the engine (the AdiControlFactory)."""
        bar0 = RegWindow(bus, res.bar0.addr)
        magic = await bar0.read(Bar0.DEV_ID)
        if magic != DEV_MAGIC:
            raise PfError(f"BAR0 dev_id 0x{magic:08x} is not 'SIOV'")
        self = cls(bus, res, Bar0.NUM_ADI.field("count").get(await bar0.read(Bar0.NUM_ADI)))
        for _ in range(self.poll_limit):
            if Bar0.PF_STATUS.field("init_done").get(await bar0.read(Bar0.PF_STATUS)):
                break
            await bus.runtime.sleep(self.poll_ns)
        else:
            raise PfError("PF RAM initialisation did not finish")
        await bar0.write(Bar0.PF_CTRL, Bar0.PF_CTRL.pack(enable=1))
        log.info("PF engine enabled, %d ADIs", self._num)
        return self

    @property
    def num_adis(self) -> int:
        return self._num

    async def pf_events(self) -> list[PfEvent]:
        cause = await self.bar0.read(Bar0.PF_INT_CAUSE)
        out: list[PfEvent] = []
        if cause & Bar0.PF_INT_CAUSE.field("adi_error").mask:
            v = Bar0.LAST_ERR.unpack(await self.bar0.read(Bar0.LAST_ERR))
            out.append(PfEvent("adi_error", v["adi"], v["err"]))
        if cause & Bar0.PF_INT_CAUSE.field("drain_done").mask:
            v = Bar0.LAST_DRAIN.unpack(await self.bar0.read(Bar0.LAST_DRAIN))
            out.append(PfEvent("drain_done", v["adi"]))
        if cause:
            await self.bar0.write(Bar0.PF_INT_CAUSE, cause)  # rw1c
        return out

    @property
    def num_switch_addrs(self) -> int:
        return self._num

    def _page(self, adi: int) -> RegWindow:
        if not 0 <= adi < self._num:
            raise PfError(f"ADI {adi} out of range")
        return self.bar0.adi_page(adi)

    async def configure(self, adi: int, cfg: AdiConfig) -> None:
        p = self._page(adi)
        log2_ring = _log2_exact(cfg.ring_size, "ring size", 0, 15)
        await p.write(AdiPage.RING_BASE_LO, cfg.ring_base & 0xFFFF_FFFF)
        await p.write(AdiPage.RING_BASE_HI, cfg.ring_base >> 32)
        await p.write(AdiPage.RING_SIZE, AdiPage.RING_SIZE.pack(log2_entries=log2_ring))
        await p.write(AdiPage.CPL_BASE_LO, cfg.cpl_base & 0xFFFF_FFFF)
        await p.write(AdiPage.CPL_BASE_HI, cfg.cpl_base >> 32)
        await p.write(AdiPage.RX_BASE_LO, cfg.rx_base & 0xFFFF_FFFF)
        await p.write(AdiPage.RX_BASE_HI, cfg.rx_base >> 32)
        slots = _log2_exact(cfg.rx_slots, "rx slots", 0, 15) if cfg.rx_slots else 0
        slot_bytes = _log2_exact(cfg.rx_slot_bytes, "rx slot bytes", 6, 16)
        await p.write(AdiPage.RX_CFG, AdiPage.RX_CFG.pack(log2_slots=slots, log2_slot_bytes=slot_bytes))
        await p.write(AdiPage.PASID, AdiPage.PASID.pack(valid=1, pmr=int(cfg.pmr), pasid=cfg.pasid))
        got = AdiPage.PASID.field("pasid").get(await p.read(AdiPage.PASID))
        if got != cfg.pasid:
            raise PfError(f"ADI {adi}: PASID write ignored (is the ADI disabled?)")

    async def set_ims(self, adi: int, msg: MsiMessage | None, masked: bool = False) -> None:
        p = self._page(adi)
        if msg is None:
            await p.write(AdiPage.IMS_CTRL, AdiPage.IMS_CTRL.pack(mask=1))
            await p.write(AdiPage.IMS_ADDR_LO, 0)
            await p.write(AdiPage.IMS_ADDR_HI, 0)
            await p.write(AdiPage.IMS_DATA, 0)
            return
        await p.write(AdiPage.IMS_CTRL, AdiPage.IMS_CTRL.pack(mask=1))  # mask while changing
        await p.write(AdiPage.IMS_ADDR_LO, msg.addr & 0xFFFF_FFFF)
        await p.write(AdiPage.IMS_ADDR_HI, msg.addr >> 32)
        await p.write(AdiPage.IMS_DATA, msg.data)
        await p.write(AdiPage.IMS_CTRL, AdiPage.IMS_CTRL.pack(mask=int(masked)))

    async def _state(self, adi: int) -> tuple[AdiState, int, bool]:
        v = await self._page(adi).read(AdiPage.STATUS)
        f = AdiPage.STATUS
        return AdiState(f.field("state").get(v)), f.field("err").get(v), bool(f.field("busy").get(v))

    async def enable(self, adi: int) -> None:
        await self._page(adi).write(AdiPage.CMD, AdiPage.CMD.pack(cmd=Cmd.ENABLE))
        state, err, _ = await self._state(adi)
        if state is not AdiState.ENABLED:
            raise PfError(f"ADI {adi} did not enable: state {state.name}, error {error_name(err)}")

    async def drain(self, adi: int) -> None:
        state, _, _ = await self._state(adi)
        if state in (AdiState.ENABLED, AdiState.DRAINING):
            await self._page(adi).write(AdiPage.CMD, AdiPage.CMD.pack(cmd=Cmd.DRAIN))
        for _ in range(self.poll_limit):
            state, _, busy = await self._state(adi)
            if state in (AdiState.DISABLED, AdiState.ERROR) and not busy:
                return
            await self.bus.runtime.sleep(self.poll_ns)
        raise PfError(f"ADI {adi} did not drain (state {state.name}, busy {busy})")

    async def reset(self, adi: int) -> None:
        await self._page(adi).write(AdiPage.CMD, AdiPage.CMD.pack(cmd=Cmd.RESET))
        state, _, _ = await self._state(adi)
        if state is not AdiState.DISABLED:
            raise PfError(f"ADI {adi} did not reset (state {state.name}): drain it first")

    async def status(self, adi: int) -> AdiStatus:
        p = self._page(adi)
        state, err, busy = await self._state(adi)
        head = AdiPage.HEAD.field("head").get(await p.read(AdiPage.HEAD))
        done = await p.read(AdiPage.CNT_DESC)
        return AdiStatus(state, err, head, done, busy)

    async def set_switch_port(self, adi: int, group: int, addr: int, *, send: bool, recv: bool) -> None:
        value = AdiPage.SW_PORT.pack(group=group, send_en=int(send), recv_en=int(recv))
        value |= (addr & 0xFFF) << 16  # sw_port.addr[27:16] (datasheet; not in older generated maps)
        await self._page(adi).write(AdiPage.SW_PORT, value)

    async def set_forward(self, addr: int, adi: int | None) -> None:
        if not 0 <= addr < self.num_switch_addrs:
            raise PfError(f"switch address {addr} out of range")
        value = 0 if adi is None else SwitchFwd.FWD.pack(valid=1, adi=adi)
        await self.bar0.switch_entry(addr).write(SwitchFwd.FWD, value)
