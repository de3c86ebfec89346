"""AdiSnapshot: the byte form a migration carries (pack / unpack, versioned, strict)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from siov_sim.sw.bus import MsiMessage
from siov_sim.sw.driver import AdiConfig, AdiSnapshot, AdiState


def _snap(rng: random.Random) -> AdiSnapshot:
    ring = 1 << rng.randrange(16)
    return AdiSnapshot(
        cfg=AdiConfig(rng.getrandbits(64) & ~31, ring, rng.getrandbits(64) & ~15, rng.getrandbits(20),
                      rng.random() < 0.5, rng.getrandbits(64), 1 << rng.randrange(16), 1 << rng.randrange(6, 17)),
        ims=None if rng.random() < 0.2 else MsiMessage(rng.getrandbits(64), rng.getrandbits(32)),
        ims_masked=rng.random() < 0.5,
        ims_pending=rng.random() < 0.5,
        sw_group=rng.getrandbits(12),
        sw_addr=rng.getrandbits(12),
        sw_send=rng.random() < 0.5,
        sw_recv=rng.random() < 0.5,
        state=rng.choice([AdiState.ENABLED, AdiState.DISABLED, AdiState.ERROR]),
        error=rng.getrandbits(8),
        err_info=rng.getrandbits(16),
        head=rng.randrange(ring),
        tail=rng.randrange(ring),
        rx_head=rng.getrandbits(15),
        rx_tail=rng.getrandbits(15),
        cnt_desc=rng.getrandbits(32),
        cnt_bytes=rng.getrandbits(32),
    )  # fmt: skip


def test_roundtrip_random() -> None:
    rng = random.Random(13)
    for _ in range(500):
        s = _snap(rng)
        b = s.pack()
        assert len(b) == AdiSnapshot.SIZE == 90
        assert b[:4] == b"ADIS" and int.from_bytes(b[4:6], "little") == AdiSnapshot.VERSION
        assert AdiSnapshot.unpack(b) == s


def test_layout_is_fixed() -> None:
    """Field offsets are part of the stream format (docs/software.md): pin a few."""
    s = AdiSnapshot(AdiConfig(0x1122334455667788, 16, 0x40, 0xABCDE, True), MsiMessage(0xFEE0_0000, 0x41),
                    False, True, 7, 9, True, False, AdiState.ERROR, 0x13, 5, 3, 4, 1, 2, 100, 4096)  # fmt: skip
    b = s.pack()
    assert b[8:16] == (0x1122334455667788).to_bytes(8, "little")  # ring_base
    assert b[16:20] == (16).to_bytes(4, "little")  # ring_size
    assert b[28:32] == (0xABCDE).to_bytes(4, "little")  # pasid
    assert b[50:58] == (0xFEE0_0000).to_bytes(8, "little") and b[58:62] == (0x41).to_bytes(4, "little")
    assert b[70:74] == bytes([2, 0x13, 5, 0])  # state, error, err_info
    assert b[74:82] == bytes([3, 0, 4, 0, 1, 0, 2, 0])  # head, tail, rx_head, rx_tail
    assert b[-8:] == (100).to_bytes(4, "little") + (4096).to_bytes(4, "little")  # counters last


@pytest.mark.parametrize(
    ("mutate", "msg"),
    [
        (lambda b: b[:-1], "bytes"),
        (lambda b: b + b"\0", "bytes"),
        (lambda b: b"XDIS" + b[4:], "magic"),
        (lambda b: b[:4] + (2).to_bytes(2, "little") + b[6:], "version"),
        (lambda b: b[:6] + (91).to_bytes(2, "little") + b[8:], "size"),
    ],
)
def test_unpack_rejects(mutate: object, msg: str) -> None:
    b = _snap(random.Random(1)).pack()
    with pytest.raises(ValueError, match=msg):
        AdiSnapshot.unpack(mutate(b))  # type: ignore[operator]


def test_unpack_rejects_bad_state_and_flags() -> None:
    s = _snap(random.Random(2))
    b = bytearray(s.pack())
    off = AdiSnapshot.SIZE - 8 - 8 - 2 - 1 - 1  # state byte: before error, err_info, 4 indices, counters
    for bad, msg in ((3, "not a quiesced state"), (9, "bad state")):
        b2 = bytearray(b)
        b2[off] = bad
        with pytest.raises(ValueError, match=msg):
            AdiSnapshot.unpack(bytes(b2))
    b3 = bytearray(b)
    b3[32] = 2  # pmr flag: after magic 4, version 2, size 2, ring_base 8, ring_size 4, cpl_base 8, pasid 4
    with pytest.raises(ValueError, match="flag"):
        AdiSnapshot.unpack(bytes(b3))


def test_pack_rejects_out_of_range() -> None:
    s = _snap(random.Random(3))
    bad = dataclasses.replace(s, cnt_desc=1 << 32)
    with pytest.raises(ValueError, match="out of range"):
        bad.pack()
