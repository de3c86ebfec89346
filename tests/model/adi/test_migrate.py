"""Golden model: QUIESCE, the outstanding-request end of DRAIN/QUIESCE and restore writes (load)."""

from __future__ import annotations

import random

import pytest

from siov_sim.model.adi import (
    AdiDevice,
    AdiState,
    Cmd,
    Completion,
    CplStatus,
    Descriptor,
    ErrorCode,
    Opcode,
    PfEvent,
    fill_bytes,
)
from siov_sim.model.mem import HostMemory

pytestmark = pytest.mark.model
RING, CPL, DATA = 0x1000, 0x8000, 0x10_0000


class Shared:
    """Every PASID sees one memory (the destination's PASID has the same mappings)."""

    def __init__(self) -> None:
        self.mem = HostMemory(0, 1 << 40)

    def read(self, pasid: int | None, addr: int, length: int) -> bytes:
        return self.mem.read(addr, length)

    def write(self, pasid: int | None, addr: int, data: bytes) -> None:
        self.mem.write(addr, data)


def setup(dev: AdiDevice, adi: int, pasid: int, ims: int) -> None:
    c = dev.adis[adi].cfg
    c.ring_base, c.log2_entries, c.cpl_base = RING, 5, CPL
    c.ims_addr, c.ims_data, c.ims_mask = 0xFEE0_0000 + ims, ims, False
    assert dev.set_pasid(adi, pasid)


RESTORED = ("head", "tail", "rx_head", "rx_tail", "cnt_desc", "cnt_bytes", "err_info")


def migrate(dev: AdiDevice, src: int, dst: int) -> None:
    """What the PF driver does: configuration copied (not the PASID/IMS), dynamic state restored."""
    a, b = dev.adis[src], dev.adis[dst]
    for f in ("ring_base", "log2_entries", "cpl_base", "rx_base", "rx_log2_slots", "rx_log2_slot_bytes"):
        setattr(b.cfg, f, getattr(a.cfg, f))
    for f in RESTORED:
        assert dev.restore(dst, f, getattr(a.dyn, f))
    assert dev.restore(dst, "status", int(a.dyn.state) | a.dyn.err << 8)
    if a.dyn.ims_pending:
        assert dev.restore(dst, "ims_pending", 1)


@pytest.mark.parametrize("seed", range(20))
def test_quiesce_save_load_continue_exactly_once(seed: int) -> None:
    rng = random.Random(seed)
    dev = AdiDevice(4, Shared())
    mem = dev.mem.mem  # type: ignore[attr-defined]
    setup(dev, 0, 0x10, 0)
    setup(dev, 2, 0x22, 2)
    dev.command(0, Cmd.ENABLE)
    n = rng.randrange(1, 31)
    descs = [Descriptor(Opcode.FILL, 64, 0x1000 + i, DATA + 64 * i, tag=i, flags=1) for i in range(n)]
    for i, d in enumerate(descs):
        mem.write(RING + 32 * i, d.pack())
    dev.doorbell(0, n)
    k = rng.randrange(0, n + 1)
    dev.run(limit=k)
    dev.command(0, Cmd.QUIESCE)  # nothing outstanding: at once
    assert dev.adis[0].dyn.state == AdiState.DISABLED and dev.pf_events[-1] == PfEvent("drain_done", 0)
    assert dev.run() == 0  # stopped
    migrate(dev, 0, 2)
    dev.command(2, Cmd.ENABLE)
    assert dev.adis[2].dyn.state == AdiState.ENABLED
    assert dev.run() == n - k
    for i, d in enumerate(descs):
        assert mem.read(DATA + 64 * i, 64) == fill_bytes(d.src, 64), i
        assert Completion.unpack(mem.read(CPL + 16 * i, 16)) == Completion(CplStatus.SUCCESS, Opcode.FILL, 64, i)
    assert [m.adi for m in dev.ims] == [0] * k + [2] * (n - k)
    assert dev.adis[2].dyn.cnt_desc == n and dev.adis[2].dyn.cnt_bytes == 64 * n
    assert dev.adis[2].dyn.head == dev.adis[2].dyn.tail == n


def test_quiesce_abort_path_resumes_on_same_adi() -> None:
    dev = AdiDevice(4, Shared())
    setup(dev, 1, 5, 1)
    dev.command(1, Cmd.ENABLE)
    for i in range(6):
        dev.mem.write(5, RING + 32 * i, Descriptor(Opcode.NOP, 0, tag=i).pack())
    dev.doorbell(1, 6)
    dev.run(limit=2)
    dev.command(1, Cmd.QUIESCE)
    assert dev.run() == 0 and dev.adis[1].dyn.head == 2
    dev.command(1, Cmd.ENABLE)
    assert dev.run() == 4 and dev.adis[1].dyn.cnt_desc == 6


def test_quiesce_waits_for_the_outstanding_request() -> None:
    dev = AdiDevice(4, Shared())
    setup(dev, 0, 1, 0)
    dev.command(0, Cmd.ENABLE)
    dev.command(0, Cmd.QUIESCE, outstanding=1)
    assert dev.adis[0].dyn.state == AdiState.DRAINING and dev.pf_events == []
    assert not dev.loadable(0) and not dev.restore(0, "head", 3)
    dev.outstanding_done(0)
    assert dev.adis[0].dyn.state == AdiState.DISABLED and dev.pf_events == [PfEvent("drain_done", 0)]
    assert dev.loadable(0)


def test_quiesce_error_meanwhile_ends_in_error() -> None:
    dev = AdiDevice(4, Shared())
    setup(dev, 0, 1, 0)
    dev.command(0, Cmd.ENABLE)
    dev.command(0, Cmd.QUIESCE, outstanding=1)
    dev._error(0, ErrorCode.CPL_UR)  # the descriptor in flight fails
    assert dev.adis[0].dyn.state == AdiState.DRAINING
    dev.outstanding_done(0)
    assert dev.adis[0].dyn.state == AdiState.ERROR and dev.adis[0].dyn.err == ErrorCode.CPL_UR
    assert dev.pf_events == [PfEvent("adi_error", 0, ErrorCode.CPL_UR), PfEvent("drain_done", 0)]


def test_drain_keeps_its_old_meaning() -> None:
    """DRAIN of an ERROR ADI still ends DISABLED (QUIESCE keeps ERROR)."""
    for cmd, end in ((Cmd.DRAIN, AdiState.DISABLED), (Cmd.QUIESCE, AdiState.ERROR)):
        dev = AdiDevice(4, Shared())
        setup(dev, 0, 1, 0)
        dev.command(0, Cmd.ENABLE)
        dev.doorbell(0, 1 << 6)  # beyond the ring: ERROR
        assert dev.adis[0].dyn.state == AdiState.ERROR
        dev.command(0, cmd, outstanding=1)
        dev.outstanding_done(0)
        assert dev.adis[0].dyn.state == end and dev.adis[0].dyn.err == ErrorCode.DOORBELL_RANGE


def test_restore_rules() -> None:
    dev = AdiDevice(4, Shared())
    setup(dev, 0, 1, 0)
    d = dev.adis[0].dyn
    assert dev.restore(0, "head", 0x1234) and d.head == 0x1234 & 31  # masked to the ring
    assert dev.restore(0, "cnt_desc", 1 << 33 | 7) and d.cnt_desc == 7
    assert not dev.restore(0, "status", 1) and d.state == AdiState.DISABLED  # ENABLED: refused
    assert not dev.restore(0, "status", 3)
    assert dev.restore(0, "status", 2 | 0x13 << 8) and d.state == AdiState.ERROR and d.err == 0x13
    assert not dev.restore(0, "head", 1)  # not DISABLED any more
    dev.command(0, Cmd.RESET)
    dev.command(0, Cmd.ENABLE)
    assert not dev.restore(0, "tail", 1) and d is not dev.adis[0].dyn and dev.adis[0].dyn.tail == 0
    dev.command(0, Cmd.QUIESCE)
    dev.adis[0].cfg.ims_mask = True
    assert dev.restore(0, "ims_pending", 1) and dev.adis[0].dyn.ims_pending
    assert dev.restore(0, "ims_pending", 0) and dev.adis[0].dyn.ims_pending  # only sets
    dev.set_ims_mask(0, False)
    assert len(dev.ims) == 1 and not dev.adis[0].dyn.ims_pending
    with pytest.raises(ValueError, match="no restorable"):
        dev.restore(0, "state", 0)


def test_send_to_quiesced_receiver_is_dropped_not_denied() -> None:
    """A receiver stopped by QUIESCE (parked) or quiescing drops SENDs like a full ring (the
    sender goes on); ENABLE (resume) or a load clears that; a plain DISABLED receiver denies."""
    from siov_sim.model.adi import RX_HDR_SIZE

    dev = AdiDevice(4, Shared())
    setup(dev, 0, 1, 0)
    setup(dev, 1, 2, 1)
    dev.set_forwarding(1, 1)
    for adi in (0, 1):
        c = dev.adis[adi].cfg
        c.send_en = c.recv_en = True
        c.rx_base, c.rx_log2_slots, c.rx_log2_slot_bytes = 0x40_0000 + adi * 0x1_0000, 3, 8
    dev.adis[0].cfg.ring_base = 0x2000  # the sender's own ring
    dev.command(0, Cmd.ENABLE)
    dev.command(1, Cmd.ENABLE)

    def send(tag: int) -> Completion:
        dev.mem.write(1, 0x2000 + 32 * dev.adis[0].dyn.tail, Descriptor(Opcode.SEND, 16, DATA, 1, tag).pack())
        dev.doorbell(0, dev.adis[0].dyn.tail + 1)
        dev.run()
        return Completion.unpack(dev.mem.read(1, CPL + 16 * (dev.adis[0].dyn.head - 1), 16))

    assert send(1).status == CplStatus.SUCCESS and dev.adis[1].dyn.rx_tail == 1
    dev.command(1, Cmd.QUIESCE, outstanding=1)  # quiescing
    r = send(2)
    assert (r.status, r.error) == (CplStatus.DROPPED, ErrorCode.RX_FULL)
    dev.outstanding_done(1)
    assert dev.adis[1].dyn.parked and send(3).status == CplStatus.DROPPED
    assert dev.adis[1].dyn.rx_tail == 1 and dev.adis[0].dyn.state == AdiState.ENABLED
    big = Descriptor(Opcode.SEND, 256 - RX_HDR_SIZE + 1, DATA, 1, 9)  # too big: still an error
    dev.mem.write(1, 0x2000 + 32 * dev.adis[0].dyn.tail, big.pack())
    dev.doorbell(0, dev.adis[0].dyn.tail + 1)
    dev.run()
    assert dev.adis[0].dyn.err == ErrorCode.HUGE_LENGTH
    dev.command(0, Cmd.RESET)
    dev.adis[0].cfg.ring_base = 0x2000
    dev.command(0, Cmd.ENABLE)
    dev.command(1, Cmd.ENABLE)  # resumed: receives again
    assert not dev.adis[1].dyn.parked and send(4).status == CplStatus.SUCCESS
    dev.command(1, Cmd.DRAIN)  # a plain DISABLED receiver denies
    assert send(5).error == ErrorCode.SEND_DENIED
