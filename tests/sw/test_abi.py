"""The device ABI the software uses is the hardware's: one definition, datasheet values, and the
error a guest sees is the code the RTL writes (``status.err``, completion record ``error``)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

import siov_sim.model.adi.formats as hw
from siov_sim.sw.driver import abi
from siov_sim.sw.driver.abi import (
    AdiState,
    Completion,
    CplStatus,
    Descriptor,
    ErrorCode,
    Opcode,
    RxHeader,
)
from siov_sim.sw.driver.adi import AdiConfig
from siov_sim.sw.guest import DpdkPmd, QueueError
from siov_sim.sw.regs import AdiPage, PortalPage, RegWindow

from .stack import Stack, build, run
from .test_drivers import pmd

pytestmark = pytest.mark.sw

# docs/datasheet.md section 3, written out here on purpose: a code that drifts from the table
# (as the old sw copy did: BAD_OPCODE=0x04 ...) fails this test, not just a round trip.
DATASHEET_ERRORS = {
    "NONE": 0x00,
    "CPL_UR": 0x01,
    "CPL_CA": 0x02,
    "DMA_TIMEOUT": 0x03,
    "CPL_POISONED": 0x04,
    "CPL_MALFORMED": 0x05,
    "NO_BUS_MASTER": 0x06,
    "CPL_OTHER": 0x07,
    "BAD_OPCODE": 0x10,
    "ZERO_LENGTH": 0x11,
    "HUGE_LENGTH": 0x12,
    "DOORBELL_RANGE": 0x13,
    "BAD_RING_ALIGN": 0x14,
    "SEND_DENIED": 0x15,
    "RX_FULL": 0x16,
    "NO_PASID": 0x17,
    "PASID_DISABLED": 0x18,
    "ABORTED": 0x19,
}


def test_sw_abi_is_the_model_definition() -> None:
    for name in ("Descriptor", "Completion", "RxHeader", "Opcode", "DescFlags", "CplStatus", "AdiState", "Cmd"):
        assert getattr(abi, name) is getattr(hw, name), name
    assert abi.ErrorCode is hw.ErrorCode
    assert (abi.DESC_SIZE, abi.CPL_SIZE, abi.RX_HDR_SIZE) == (32, 16, 16)
    assert not hasattr(abi, "AdiError") and not hasattr(abi, "CPL_ERROR_BASE")


def test_values_follow_the_datasheet() -> None:
    assert {e.name: int(e) for e in ErrorCode} == DATASHEET_ERRORS
    assert {e.name: int(e) for e in CplStatus} == {"PENDING": 0, "SUCCESS": 1, "ERROR": 2, "DROPPED": 3, "ABORTED": 4}
    assert {e.name: int(e) for e in Opcode} == {"NOP": 0, "COPY": 1, "FILL": 2, "SEND": 3}
    assert {e.name: int(e) for e in AdiState} == {"DISABLED": 0, "ENABLED": 1, "ERROR": 2, "DRAINING": 3}


def test_byte_layouts() -> None:
    # descriptor (section 4): SEND switch address in dst[15:0], 32-bit tag at 24..27
    raw = Descriptor(Opcode.SEND, 12, src=0x1122_3344_5566, dst=0x2A, tag=0xDEAD_BEEF, flags=1).pack()
    assert len(raw) == 32
    assert struct.unpack("<BBHIQQII", raw) == (3, 1, 0, 12, 0x1122_3344_5566, 0x2A, 0xDEAD_BEEF, 0)
    # completion record (section 5): status, opcode, rsvd, bytes, tag, error at 12..15
    raw = Completion(CplStatus.ERROR, Opcode.COPY, 0x2000, 0xCAFE_F00D, ErrorCode.CPL_UR).pack()
    assert struct.unpack("<BBHIII", raw) == (2, 1, 0, 0x2000, 0xCAFE_F00D, 1)
    # receive slot header (section 6): length, source switch address, seq = tag of the SEND
    assert struct.unpack("<IIQ", RxHeader(64, 7, 0xDEAD_BEEF).pack()) == (64, 7, 0xDEAD_BEEF)


def _record(read: Callable[[int, int], bytes], cpl: int, slot: int) -> tuple[int, ...]:
    return struct.unpack("<BBHIII", read(cpl + 16 * slot, 16))


BAD_DESCRIPTORS: list[tuple[str, Callable[[int, int], Descriptor], ErrorCode]] = [
    ("bad opcode", lambda s, d: Descriptor(9, 64, s, d, tag=0x1234), ErrorCode.BAD_OPCODE),
    ("zero length copy", lambda s, d: Descriptor(Opcode.COPY, 0, s, d, tag=0x1234), ErrorCode.ZERO_LENGTH),
    ("zero length fill", lambda s, d: Descriptor(Opcode.FILL, 0, 0x55, d, tag=0x1234), ErrorCode.ZERO_LENGTH),
    ("copy > 1 MiB", lambda s, d: Descriptor(Opcode.COPY, (1 << 20) + 1, s, d, tag=0x1234), ErrorCode.HUGE_LENGTH),
    ("send > 4 KiB", lambda s, d: Descriptor(Opcode.SEND, 4097, s, 0, tag=0x1234), ErrorCode.HUGE_LENGTH),
]


@pytest.mark.parametrize(("case", "make", "code"), BAD_DESCRIPTORS, ids=[c[0] for c in BAD_DESCRIPTORS])
def test_guest_bad_descriptor_reports_the_rtl_error_code(
    case: str, make: Callable[[int, int], Descriptor], code: ErrorCode
) -> None:
    async def body() -> None:
        st = await build()
        a, ua = await pmd(st)
        b, _ = await pmd(st)
        q = a.queues[0]
        src, dst = await a.mem.alloc(8192), await a.mem.alloc(8192)
        await q.copy(src, dst, 64)  # one good descriptor first: the bad one is in slot 1
        slot = q.tail
        with pytest.raises(QueueError) as ei:
            await q.run(make(src, dst))
        assert ei.value.error == code, case
        assert ei.value.state == AdiState.ERROR
        assert code.name in str(ei.value)
        # the completion record as the device wrote it: status ERROR, the tag, error at 12..15
        status, _op, _r, done, tag, err = _record(a.mem.read, q.cpl, slot)
        assert (status, done, tag, err) == (CplStatus.ERROR, 0, 0x1234, code)
        assert await q.status() == (AdiState.ERROR, code)
        adi = st.vdcm.get(ua).adis[0]
        assert [(e.kind, e.adi, e.error) for e in await st.pf.service_events()] == [("adi_error", adi, code)]
        assert (await st.pf.adi.status(adi)).error == code
        # the other VDEV keeps running; A recovers with a queue reset
        s2, d2 = await b.mem.alloc(4096), await b.mem.alloc(4096)
        await b.queues[0].copy(s2, d2, 4096)
        await q.reset()
        await q.copy(src, dst, 64)

    run(body())


def test_doorbell_and_rx_doorbell_out_of_range_are_doorbell_range() -> None:
    async def body() -> None:
        st = await build()
        a, _ = await pmd(st)
        await a.portals[0].write32(PortalPage.DOORBELL.offset, 64)  # ring of 64: 0..63
        with pytest.raises(QueueError) as ei:
            await a.queues[0].wait(0)
        assert (ei.value.state, ei.value.error) == (AdiState.ERROR, ErrorCode.DOORBELL_RANGE)
        assert [(e.kind, e.error) for e in await st.pf.service_events()] == [("adi_error", ErrorCode.DOORBELL_RANGE)]
        b, _ = await pmd(st)
        await b.portals[0].write32(PortalPage.RX_DOORBELL.offset, 8)  # 8 receive slots: 0..7
        assert await b.queues[0].status() == (AdiState.ERROR, ErrorCode.DOORBELL_RANGE)
        c, _ = await pmd(st)
        await c.portals[0].write32(PortalPage.DOORBELL.offset, 0x1_0001)  # bits 31:16 count (RTL)
        assert await c.queues[0].status() == (AdiState.ERROR, ErrorCode.DOORBELL_RANGE)

    run(body())


def test_enable_checks_report_bad_ring_align_and_no_pasid() -> None:
    async def body() -> None:
        st = await build(num_adis=4)
        adi = st.pf.adi
        await adi.configure(1, AdiConfig(ring_base=0x1010, ring_size=8, cpl_base=0x2000, pasid=5))
        with pytest.raises(Exception, match="BAD_RING_ALIGN"):
            await adi.enable(1)
        assert (await adi.status(1)).state == AdiState.ERROR
        assert (await adi.status(1)).error == ErrorCode.BAD_RING_ALIGN
        await adi.reset(1)
        await adi.configure(1, AdiConfig(ring_base=0x1000, ring_size=8, cpl_base=0x2008, pasid=5))
        with pytest.raises(Exception, match="BAD_RING_ALIGN"):
            await adi.enable(1)
        # PASID Enable is set by the PF driver: an ADI without a valid PASID must not run
        await adi.reset(1)
        await adi.configure(1, AdiConfig(ring_base=0x1000, ring_size=8, cpl_base=0x2000, pasid=5))
        page = RegWindow(st.host, st.pf.bar(0).addr).adi_page(1)
        await page.write(AdiPage.PASID, AdiPage.PASID.pack(pasid=5, valid=0))
        with pytest.raises(Exception, match="NO_PASID"):
            await adi.enable(1)
        assert (await adi.status(1)).error == ErrorCode.NO_PASID
        evs = [(e.adi, e.error) for e in st.pf.events if e.kind == "adi_error"] + [
            (e.adi, e.error) for e in await st.pf.service_events() if e.kind == "adi_error"
        ]
        assert (1, ErrorCode.NO_PASID) in evs

    run(body())


def test_send_to_a_full_ring_is_dropped_not_an_error() -> None:
    async def body() -> None:
        st: Stack = await build()
        a, ua = await pmd(st, network="n")
        b, ub = await pmd(st, network="n")
        assert isinstance(b, DpdkPmd) and b.queues[0].rx_slots == 8
        src = await a.mem.alloc(4096)
        q = a.queues[0]
        tags = []
        for i in range(7):  # 8 slots hold 7 packets
            a.mem.write(src, bytes([i]) * 32)
            rec = await q.send(src, 32, st.vdcm.switch_addr(ub))
            assert rec.status == CplStatus.SUCCESS and rec.error == ErrorCode.NONE
            tags.append(rec.tag)
        rec = await q.send(src, 32, st.vdcm.switch_addr(ub))
        assert (rec.status, rec.error, rec.bytes_done) == (CplStatus.DROPPED, ErrorCode.RX_FULL, 0)
        assert q.stats.dropped == 1 and (await q.status())[0] is AdiState.ENABLED
        for i in range(7):
            got = await b.queues[0].receive()
            assert got is not None
            hdr, data = got
            assert (hdr.length, hdr.src_addr, hdr.seq, data) == (32, st.vdcm.switch_addr(ua), tags[i], bytes([i]) * 32)
        rec = await q.send(src, 32, st.vdcm.switch_addr(ub))
        assert rec.status == CplStatus.SUCCESS

    run(body())


def test_tags_are_32_bit_and_come_back_in_the_record() -> None:
    async def body() -> None:
        st = await build()
        a, _ = await pmd(st)
        q = a.queues[0]
        src, dst = await a.mem.alloc(4096), await a.mem.alloc(4096)
        rec = await q.run(Descriptor(Opcode.COPY, 64, src, dst, tag=0xFFFF_FFFF))
        assert rec.tag == 0xFFFF_FFFF
        q._tag = 0xFFFF_FFFF  # the driver's own tags wrap at 32 bits
        assert (await q.copy(src, dst, 64)).tag == 0
        with pytest.raises(ValueError):
            await q.send(src, 64, 0x1_0000)

    run(body())
