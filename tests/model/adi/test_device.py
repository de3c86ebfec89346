"""Golden model of the ADIs: formats, state machine, COPY/FILL/SEND, errors, IMS."""

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
    DmaError,
    ErrorCode,
    Opcode,
    PfEvent,
    RxHeader,
    fill_bytes,
)
from siov_sim.model.mem import HostMemory

pytestmark = pytest.mark.model
RING, CPL, DATA = 0x1000, 0x8000, 0x10_0000


class Spaces:
    def __init__(self) -> None:
        self.mems: dict[int | None, HostMemory] = {}
        self.faults: set[tuple[int | None, int]] = set()

    def mem(self, pasid: int | None) -> HostMemory:
        return self.mems.setdefault(pasid, HostMemory(0, 1 << 40))

    def read(self, pasid: int | None, addr: int, length: int) -> bytes:
        if (pasid, addr >> 12) in self.faults:
            raise DmaError(ErrorCode.CPL_UR)
        return self.mem(pasid).read(addr, length)

    def write(self, pasid: int | None, addr: int, data: bytes) -> None:
        self.mem(pasid).write(addr, data)


def make(n: int = 4) -> tuple[AdiDevice, Spaces]:
    sp = Spaces()
    dev = AdiDevice(n, sp)
    for adi in range(n):
        c = dev.adis[adi].cfg
        c.ring_base, c.log2_entries, c.cpl_base = RING + adi * 0x400, 4, CPL + adi * 0x100
        c.ims_addr, c.ims_data, c.ims_mask = 0xFEE0_0000, adi, False
        assert dev.set_pasid(adi, 0x10 + adi)
        dev.command(adi, Cmd.ENABLE)
    return dev, sp


def submit(dev: AdiDevice, sp: Spaces, adi: int, descs: list[Descriptor]) -> None:
    a = dev.adis[adi]
    idx = a.dyn.tail
    for d in descs:
        sp.write(dev.space(adi), a.cfg.ring_base + 32 * idx, d.pack())
        idx = (idx + 1) % (1 << a.cfg.log2_entries)
    dev.doorbell(adi, idx)


def record(dev: AdiDevice, sp: Spaces, adi: int, idx: int) -> Completion:
    return Completion.unpack(sp.mem(dev.space(adi)).read(dev.adis[adi].cfg.cpl_base + 16 * idx, 16))


def test_formats_roundtrip() -> None:
    d = Descriptor(Opcode.COPY, 100, 0x1234, 0x5678, 0xABCD, 1)
    assert len(d.pack()) == 32 and Descriptor.unpack(d.pack()) == d
    c = Completion(CplStatus.SUCCESS, Opcode.FILL, 7, 9, 0)
    assert len(c.pack()) == 16 and Completion.unpack(c.pack()) == c
    assert RxHeader.unpack(RxHeader(5, 6, 7).pack()) == RxHeader(5, 6, 7)
    assert fill_bytes(0x0807060504030201, 10) == bytes([1, 2, 3, 4, 5, 6, 7, 8, 1, 2])


def test_copy_fill_nop_round_robin() -> None:
    dev, sp = make()
    rng = random.Random(1)
    src = rng.randbytes(9000)
    sp.write(0x10, DATA, src)
    submit(
        dev,
        sp,
        0,
        [
            Descriptor(Opcode.COPY, 9000, DATA, DATA + 0x4000, tag=1, flags=1),
            Descriptor(Opcode.FILL, 33, 0x1122334455667788, DATA + 0x8000, tag=2),
            Descriptor(Opcode.NOP, 0, tag=3),
        ],
    )
    submit(dev, sp, 1, [Descriptor(Opcode.FILL, 8, 0xFF, DATA, tag=4)])
    assert dev.run() == 4
    assert sp.mem(0x10).read(DATA + 0x4000, 9000) == src
    assert sp.mem(0x10).read(DATA + 0x8000, 33) == fill_bytes(0x1122334455667788, 33)
    assert sp.mem(0x11).read(DATA, 8) == (0xFF).to_bytes(8, "little")
    assert record(dev, sp, 0, 0) == Completion(CplStatus.SUCCESS, Opcode.COPY, 9000, 1)
    assert record(dev, sp, 0, 2) == Completion(CplStatus.SUCCESS, Opcode.NOP, 0, 3)
    d = dev.adis[0].dyn
    assert (d.head, d.cnt_desc, d.cnt_bytes) == (3, 3, 9033)
    assert [(m.adi, m.data) for m in dev.ims] == [(0, 0)]  # only the INTR descriptor


@pytest.mark.parametrize(
    ("desc", "code"),
    [
        (Descriptor(9, 10), ErrorCode.BAD_OPCODE),
        (Descriptor(Opcode.COPY, 0), ErrorCode.ZERO_LENGTH),
        (Descriptor(Opcode.FILL, (1 << 20) + 1), ErrorCode.HUGE_LENGTH),
        (Descriptor(Opcode.SEND, 4097), ErrorCode.HUGE_LENGTH),
        (Descriptor(Opcode.SEND, 16, DATA, 1), ErrorCode.SEND_DENIED),
        (Descriptor(Opcode.COPY, 16, DATA + 0x5000, DATA), ErrorCode.CPL_UR),
    ],
)
def test_errors_halt_one_adi(desc: Descriptor, code: ErrorCode) -> None:
    dev, sp = make()
    sp.faults.add((0x12, (DATA + 0x5000) >> 12))
    submit(dev, sp, 2, [desc, Descriptor(Opcode.NOP, 0)])
    submit(dev, sp, 3, [Descriptor(Opcode.NOP, 0)])
    dev.run()
    d = dev.adis[2].dyn
    assert (d.state, d.err, d.err_info, d.head) == (AdiState.ERROR, code, 0, 1)
    assert record(dev, sp, 2, 0).status == CplStatus.ERROR and record(dev, sp, 2, 0).error == code
    assert dev.adis[3].dyn.cnt_desc == 1
    assert [(e.kind, e.adi, e.code) for e in dev.pf_events] == [("adi_error", 2, code)]
    dev.command(2, Cmd.RESET)
    assert dev.adis[2].dyn.state == AdiState.DISABLED and dev.adis[2].dyn.err == 0


def test_enable_checks_and_doorbell_range() -> None:
    dev, _sp = make()
    dev.command(0, Cmd.DRAIN)
    assert dev.pf_events[-1].kind == "drain_done"
    dev.adis[0].cfg.ring_base = RING + 8
    dev.command(0, Cmd.ENABLE)
    assert dev.adis[0].dyn.err == ErrorCode.BAD_RING_ALIGN
    dev.command(1, Cmd.DRAIN)
    assert not dev.set_pasid(2, 5)  # enabled: PASID locked
    dev.adis[1].cfg.pasid_valid = False
    dev.command(1, Cmd.ENABLE)
    assert dev.adis[1].dyn.err == ErrorCode.NO_PASID
    dev.doorbell(2, 16)
    assert (dev.adis[2].dyn.err, dev.adis[2].dyn.err_info) == (ErrorCode.DOORBELL_RANGE, 16)


def test_send_switch_groups_and_full_ring() -> None:
    dev, sp = make()
    for adi, grp in ((0, 1), (1, 1), (2, 2)):
        c = dev.adis[adi].cfg
        c.group, c.port_addr, c.send_en, c.recv_en = grp, 40 + adi, True, True
        c.rx_base, c.rx_log2_slots, c.rx_log2_slot_bytes = 0x40_0000, 1, 8
    dev.set_forwarding(1, 1)
    dev.set_forwarding(2, 2)
    sp.write(0x10, DATA, b"hello world")
    submit(dev, sp, 0, [Descriptor(Opcode.SEND, 11, DATA, 1, tag=7), Descriptor(Opcode.SEND, 11, DATA, 1, tag=8)])
    dev.run()
    assert RxHeader.unpack(sp.mem(0x11).read(0x40_0000, 16)) == RxHeader(11, 40, 7)
    assert sp.mem(0x11).read(0x40_0010, 11) == b"hello world"
    assert dev.adis[1].dyn.rx_tail == 1
    rec = record(dev, sp, 0, 1)
    assert (rec.status, rec.error) == (CplStatus.DROPPED, ErrorCode.RX_FULL)  # 2 slots hold 1
    assert dev.adis[0].dyn.state == AdiState.ENABLED
    submit(dev, sp, 0, [Descriptor(Opcode.SEND, 300, DATA, 1)])  # > slot - 16
    dev.run()
    assert dev.adis[0].dyn.err == ErrorCode.HUGE_LENGTH
    dev.command(0, Cmd.RESET)
    dev.command(0, Cmd.ENABLE)
    submit(dev, sp, 0, [Descriptor(Opcode.SEND, 4, DATA, 2)])  # other group
    dev.run()
    assert dev.adis[0].dyn.err == ErrorCode.SEND_DENIED


def test_ims_mask_pending() -> None:
    dev, sp = make()
    dev.set_ims_mask(0, True)
    submit(dev, sp, 0, [Descriptor(Opcode.NOP, 0, flags=1)])
    dev.run()
    assert dev.ims == [] and dev.adis[0].dyn.ims_pending
    dev.set_ims_mask(0, False)
    assert len(dev.ims) == 1 and not dev.adis[0].dyn.ims_pending


def test_abort_stops_a_copy_at_a_step_boundary() -> None:
    """ABORT mid-COPY: the data up to the step in progress is moved, the record says ABORTED with
    those bytes, the ADI ends DISABLED + drain_done without counting the descriptor; ENABLE
    resumes after it. ABORT with nothing outstanding is DRAIN (ERROR -> DISABLED, reason kept)."""
    dev, sp = make()
    rng = random.Random(2)
    src = rng.randbytes(64 * 1024)
    sp.write(0x10, DATA, src)
    submit(dev, sp, 0, [Descriptor(Opcode.COPY, len(src), DATA, DATA + 0x10_0000, tag=7),
                        Descriptor(Opcode.NOP, 0, tag=8)])
    rec = dev.step(0, abort_at=5000)
    assert rec == Completion(CplStatus.ABORTED, Opcode.COPY, 3 * 2048, 7, ErrorCode.ABORTED)
    assert record(dev, sp, 0, 0) == rec
    assert sp.mem(0x10).read(DATA + 0x10_0000, 6144) == src[:6144]
    assert sp.mem(0x10).read(DATA + 0x10_0000 + 6144, 16) == bytes(16)  # nothing past the stop
    d = dev.adis[0].dyn
    assert (d.state, d.err, d.err_info, d.head, d.cnt_desc) == (AdiState.DISABLED, 0, 0, 1, 0)
    assert [(e.kind, e.adi) for e in dev.pf_events] == [("drain_done", 0)] and dev.ims == []
    dev.command(0, Cmd.ENABLE)
    assert dev.run() == 1 and record(dev, sp, 0, 1).status == CplStatus.SUCCESS
    # an ABORT after the last request: the descriptor completes, then DISABLED
    submit(dev, sp, 0, [Descriptor(Opcode.FILL, 100, 0xAB, DATA, tag=9, flags=1)])
    assert dev.step(0, abort_at=1 << 20).status == CplStatus.SUCCESS
    assert dev.adis[0].dyn.state == AdiState.DISABLED and dev.pf_events[-1].kind == "drain_done"
    # nothing outstanding: DRAIN at once; ERROR -> DISABLED with its reason
    dev.doorbell(1, 99)
    assert dev.adis[1].dyn.state == AdiState.ERROR
    dev.command(1, Cmd.ABORT)
    d1 = dev.adis[1].dyn
    assert (d1.state, d1.err) == (AdiState.DISABLED, ErrorCode.DOORBELL_RANGE)
    assert dev.pf_events[-1] == PfEvent("drain_done", 1)
    # ABORT overrides a QUIESCE in progress
    dev.command(2, Cmd.QUIESCE, outstanding=1)
    dev.command(2, Cmd.ABORT, outstanding=1)
    dev.outstanding_done(2)
    d2 = dev.adis[2].dyn
    assert (d2.state, d2.quiesce, d2.parked) == (AdiState.DISABLED, False, False)


def test_pasid_cleared_mid_copy_writes_no_record() -> None:
    """PASID Enable cleared during a COPY: no more requests, no completion record (it would
    need the PASID prefix), the ADI ends ERROR PASID_DISABLED; every other ADI enabled with a
    PASID stops too; an ADI enabled while PASID was off is not affected."""
    dev, sp = make()
    src = bytes(range(256)) * 64
    sp.write(0x10, DATA, src)
    submit(dev, sp, 0, [Descriptor(Opcode.COPY, len(src), DATA, DATA + 0x10_0000, tag=1)])
    rec = dev.step(0, pasid_off_at=2048)
    assert (rec.status, rec.error, rec.bytes_done) == (CplStatus.ERROR, ErrorCode.PASID_DISABLED, 2048)
    assert record(dev, sp, 0, 0).status == CplStatus.PENDING
    assert sp.mem(0x10).read(DATA + 0x10_0000 + 2048, 16) == bytes(16)
    for adi in range(4):
        d = dev.adis[adi].dyn
        assert (d.state, d.err) == (AdiState.ERROR, ErrorCode.PASID_DISABLED), adi
    assert dev.adis[0].dyn.err_info == 0
    assert sorted(e.adi for e in dev.pf_events if e.kind == "adi_error") == [0, 1, 2, 3]
    # enabled while PASID Enable is clear: no prefix, runs on
    dev.command(1, Cmd.RESET)
    dev.command(1, Cmd.ENABLE)
    assert (dev.adis[1].dyn.state, dev.adis[1].dyn.pasid_on) == (AdiState.ENABLED, False)
    assert dev.space(1) is None  # requests without a prefix
    submit(dev, sp, 1, [Descriptor(Opcode.FILL, 8, 0x55, DATA, tag=2)])
    dev.pasid_disable()  # again: nothing to stop
    assert dev.run() == 1 and dev.adis[1].dyn.state == AdiState.ENABLED
