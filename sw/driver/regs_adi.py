""":class:`AdiControl` over the PF control registers in BAR0 (the generated ``sw/regs`` layer)."""

from __future__ import annotations

import logging

from siov_sim.sw.bus import HostBus, MsiMessage
from siov_sim.sw.driver.abi import AdiState, Cmd, error_name
from siov_sim.sw.driver.adi import AdiConfig, AdiSnapshot, AdiStatus, PfEvent
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
        self._quiesced: dict[int, AdiState] = {}  # ADI -> state quiesce() found (for save())

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
        self._quiesced.pop(adi, None)
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

    async def abort(self, adi: int) -> None:
        state, _, busy = await self._state(adi)
        if state is not AdiState.DISABLED or busy:
            await self._page(adi).write(AdiPage.CMD, AdiPage.CMD.pack(cmd=Cmd.ABORT))
        for _ in range(self.poll_limit):
            state, _, busy = await self._state(adi)
            if state is AdiState.DISABLED and not busy:
                return
            await self.bus.runtime.sleep(self.poll_ns)
        raise PfError(f"ADI {adi} did not drain after ABORT (state {state.name}, busy {busy})")

    async def reset(self, adi: int) -> None:
        self._quiesced.pop(adi, None)
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

    # ------------------------------------------------------------------ migration
    async def quiesce(self, adi: int) -> AdiState:
        p = self._page(adi)
        before, _, _ = await self._state(adi)
        # a repeated quiesce (e.g. after a timeout) reports the state the first one found
        was = self._quiesced.setdefault(adi, AdiState.ENABLED if before is AdiState.DRAINING else before)
        await p.write(AdiPage.CMD, AdiPage.CMD.pack(cmd=Cmd.QUIESCE))
        f = AdiPage.STATUS
        for _ in range(self.poll_limit):
            v = await p.read(AdiPage.STATUS)
            state = AdiState(f.field("state").get(v))
            busy, flush = bool(f.field("busy").get(v)), bool(f.field("flush").get(v))
            if state in (AdiState.DISABLED, AdiState.ERROR) and not busy and not flush:
                log.info("ADI %d quiesced (was %s, now %s)", adi, was.name, state.name)
                return was
            await self.bus.runtime.sleep(self.poll_ns)
        raise PfError(f"ADI {adi} did not quiesce (state {state.name}, busy {busy}, flush {flush})")

    async def save(self, adi: int, was: AdiState | None = None) -> AdiSnapshot:
        p = self._page(adi)
        if was is None:
            if adi not in self._quiesced:
                raise PfError(f"ADI {adi}: save() without quiesce() (pass was=...)")
            was = self._quiesced[adi]
        state, err, busy = await self._state(adi)
        if state not in (AdiState.DISABLED, AdiState.ERROR) or busy:
            raise PfError(f"ADI {adi} is not quiesced (state {state.name}, busy {busy})")
        r = {reg.name: await p.read(reg) for reg in (
            AdiPage.RING_BASE_LO, AdiPage.RING_BASE_HI, AdiPage.RING_SIZE, AdiPage.CPL_BASE_LO,
            AdiPage.CPL_BASE_HI, AdiPage.RX_BASE_LO, AdiPage.RX_BASE_HI, AdiPage.RX_CFG,
            AdiPage.PASID, AdiPage.IMS_ADDR_LO, AdiPage.IMS_ADDR_HI, AdiPage.IMS_DATA,
            AdiPage.IMS_CTRL, AdiPage.SW_PORT, AdiPage.HEAD, AdiPage.TAIL, AdiPage.RX_IDX,
            AdiPage.CNT_DESC, AdiPage.CNT_BYTES, AdiPage.ERR_INFO)}  # fmt: skip
        rx_cfg = AdiPage.RX_CFG.unpack(r["rx_cfg"])
        pasid = AdiPage.PASID.unpack(r["pasid"])
        cfg = AdiConfig(
            ring_base=r["ring_base_lo"] | r["ring_base_hi"] << 32,
            ring_size=1 << AdiPage.RING_SIZE.field("log2_entries").get(r["ring_size"]),
            cpl_base=r["cpl_base_lo"] | r["cpl_base_hi"] << 32,
            pasid=pasid["pasid"],
            pmr=bool(pasid["pmr"]),
            rx_base=r["rx_base_lo"] | r["rx_base_hi"] << 32,
            rx_slots=(1 << rx_cfg["log2_slots"]) if rx_cfg["log2_slots"] else 0,
            rx_slot_bytes=1 << rx_cfg["log2_slot_bytes"],
        )
        ims_addr = r["ims_addr_lo"] | r["ims_addr_hi"] << 32
        ims = MsiMessage(ims_addr, r["ims_data"]) if ims_addr or r["ims_data"] else None
        ims_ctrl = AdiPage.IMS_CTRL.unpack(r["ims_ctrl"])
        port = AdiPage.SW_PORT.unpack(r["sw_port"])
        rx = AdiPage.RX_IDX.unpack(r["rx_idx"])
        return AdiSnapshot(
            cfg=cfg,
            ims=ims,
            ims_masked=bool(ims_ctrl["mask"]),
            ims_pending=bool(ims_ctrl["pending"]),
            sw_group=port["group"],
            sw_addr=port["addr"],
            sw_send=bool(port["send_en"]),
            sw_recv=bool(port["recv_en"]),
            state=AdiState.ERROR if state is AdiState.ERROR else was,
            error=err,
            err_info=AdiPage.ERR_INFO.field("index").get(r["err_info"]),
            head=AdiPage.HEAD.field("head").get(r["head"]),
            tail=AdiPage.TAIL.field("tail").get(r["tail"]),
            rx_head=rx["rx_head"],
            rx_tail=rx["rx_tail"],
            cnt_desc=r["cnt_desc"],
            cnt_bytes=r["cnt_bytes"],
        )

    async def load(self, adi: int, snap: AdiSnapshot, *, pasid: int, ims: MsiMessage | None = None) -> None:
        p = self._page(adi)
        check_snapshot(snap, pasid)
        state, err, busy = await self._state(adi)
        if state is not AdiState.DISABLED or err or busy:
            raise PfError(
                f"ADI {adi} cannot be loaded: state {state.name}, error {error_name(err)}, busy {busy}"
                " (it must be DISABLED and reset)"
            )
        cfg = snap.cfg
        await self.configure(adi, AdiConfig(cfg.ring_base, cfg.ring_size, cfg.cpl_base, pasid, cfg.pmr,
                                            cfg.rx_base, cfg.rx_slots, cfg.rx_slot_bytes))  # fmt: skip
        msg = ims if ims is not None else snap.ims
        await self.set_ims(adi, msg, masked=True)
        if snap.ims_pending:  # set pending while masked; the final mask write sends it if unmasked
            await p.write(AdiPage.IMS_CTRL, AdiPage.IMS_CTRL.pack(mask=1, pending=1))
        await self.set_switch_port(adi, snap.sw_group, snap.sw_addr, send=snap.sw_send, recv=snap.sw_recv)
        await p.write(AdiPage.HEAD, AdiPage.HEAD.pack(head=snap.head))
        await p.write(AdiPage.TAIL, AdiPage.TAIL.pack(tail=snap.tail))
        await p.write(AdiPage.RX_IDX, AdiPage.RX_IDX.pack(rx_head=snap.rx_head, rx_tail=snap.rx_tail))
        await p.write(AdiPage.CNT_DESC, snap.cnt_desc)
        await p.write(AdiPage.CNT_BYTES, snap.cnt_bytes)
        await p.write(AdiPage.ERR_INFO, AdiPage.ERR_INFO.pack(index=snap.err_info))
        target = AdiState.ERROR if snap.state is AdiState.ERROR else AdiState.DISABLED
        await p.write(AdiPage.STATUS, AdiPage.STATUS.pack(state=int(target), err=snap.error))
        await p.write(AdiPage.IMS_CTRL, AdiPage.IMS_CTRL.pack(mask=int(snap.ims_masked)))
        got = await self._read_back(adi)
        want = (target, snap.error, snap.head, snap.tail, snap.rx_head, snap.rx_tail, snap.cnt_desc,
                snap.cnt_bytes, snap.err_info)  # fmt: skip
        if got != want:
            raise PfError(f"ADI {adi}: load did not take: read back {got}, expected {want}")
        self._quiesced.pop(adi, None)
        log.info("ADI %d loaded (PASID %d, state %s, head %d tail %d)", adi, pasid, target.name, snap.head, snap.tail)

    async def _read_back(self, adi: int) -> tuple[AdiState, int, int, int, int, int, int, int, int]:
        p = self._page(adi)
        state, err, _ = await self._state(adi)
        rx = AdiPage.RX_IDX.unpack(await p.read(AdiPage.RX_IDX))
        return (
            state, err,
            AdiPage.HEAD.field("head").get(await p.read(AdiPage.HEAD)),
            AdiPage.TAIL.field("tail").get(await p.read(AdiPage.TAIL)),
            rx["rx_head"], rx["rx_tail"],
            await p.read(AdiPage.CNT_DESC), await p.read(AdiPage.CNT_BYTES),
            AdiPage.ERR_INFO.field("index").get(await p.read(AdiPage.ERR_INFO)),
        )  # fmt: skip


def check_snapshot(snap: AdiSnapshot, pasid: int) -> None:
    """PfError unless ``snap`` can be loaded as is (indices inside its rings, ERROR with a reason)."""
    c = snap.cfg
    _log2_exact(c.ring_size, "ring size", 0, 15)
    if c.rx_slots:
        _log2_exact(c.rx_slots, "rx slots", 0, 15)
    _log2_exact(c.rx_slot_bytes, "rx slot bytes", 6, 16)
    if not 0 <= pasid < 1 << 20:
        raise PfError(f"PASID {pasid} out of range")
    rx = c.rx_slots or 1
    for name, value, size in (("head", snap.head, c.ring_size), ("tail", snap.tail, c.ring_size),
                              ("rx_head", snap.rx_head, rx), ("rx_tail", snap.rx_tail, rx)):  # fmt: skip
        if not 0 <= value < size:
            raise PfError(f"snapshot {name} {value} outside its ring of {size}")
    if snap.state not in (AdiState.ENABLED, AdiState.DISABLED, AdiState.ERROR):
        raise PfError(f"snapshot state {snap.state.name} is not a quiesced state")
    if (snap.state is AdiState.ERROR) != (snap.error != 0):
        raise PfError(f"snapshot state {snap.state.name} with error {error_name(snap.error)}")
    if not 0 <= snap.error < 256 or not 0 <= snap.err_info < 1 << 16:
        raise PfError("snapshot error / err_info out of range")
    if not 0 <= snap.sw_group < 1 << 12 or not 0 <= snap.sw_addr < 1 << 12:
        raise PfError("snapshot switch port out of range")
    if not 0 <= snap.cnt_desc < 1 << 32 or not 0 <= snap.cnt_bytes < 1 << 32:
        raise PfError("snapshot counters out of range")
