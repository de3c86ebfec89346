"""The VDCM's device-state stream: what a VDEV's STOP_COPY data fd reads and RESUMING takes.

Versioned and self-describing, little-endian, one stream per VDEV (``docs/software.md``,
"Device-state stream")::

    header   magic "SIOVVDEV" | u16 version | u16 header bytes | u32 total bytes
             | char[16] mdev type (NUL padded) | u16 queues | u16 reserved
    records  u16 tag | u16 flags (0) | u32 length | payload      (any order, each tag once,
                                                                   QUEUE once per queue)
             CONFIG  virtual config space, first 256 bytes (the VDEV has no extended caps)
             MSIX    u16 vectors | table (16 B per vector) | PBA (one byte per vector)
             VREGS   u32 reject count | u32 last reject reason
             QUEUE   u16 queue | u8 enabled | u8 reserved | u32 regs[9] (RING_BASE_LO ..
                     RX_SLOT_BYTES, the guest's virtual queue registers) | u16 snapshot bytes
                     | AdiSnapshot.pack() of the queue's ADI
    trailer  u16 tag END | u16 0 | u32 4 | u32 CRC-32 (zlib) of every byte before the trailer

:func:`decode` checks everything before anything is applied: magic, version, lengths, the
checksum, the type and queue count against the destination VDEV, each record and each
ADI snapshot; any problem is :class:`StreamError` (the VDEV turns it into EINVAL).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from siov_sim.sw.driver.adi import AdiSnapshot

MAGIC = b"SIOVVDEV"
VERSION = 1
CONFIG_BYTES = 256

TAG_CONFIG = 1
TAG_MSIX = 2
TAG_VREGS = 3
TAG_QUEUE = 4
TAG_END = 0xFFFF

_HDR = struct.Struct("<8sHHI16sHH")
_REC = struct.Struct("<HHI")
_QUEUE = struct.Struct("<HBB9IH")
_VREGS = struct.Struct("<II")


class StreamError(ValueError):
    """The stream is not a valid device state for this VDEV."""


@dataclass(frozen=True, slots=True)
class QueueState:
    enabled: bool
    regs: tuple[int, ...]  # the 9 virtual config registers, in QREG order of vdev._CONFIG_ORDER
    adi: AdiSnapshot


@dataclass(frozen=True, slots=True)
class VdevState:
    """Everything of one VDEV that moves: guest-visible virtual state plus each ADI's snapshot."""

    type_id: str
    config: bytes  # CONFIG_BYTES
    msix_table: bytes  # 16 B per vector
    msix_pending: tuple[bool, ...]
    reject_count: int
    last_reject: int
    queues: tuple[QueueState, ...]


def encode(st: VdevState) -> bytes:
    tid = st.type_id.encode()
    if len(tid) > 16:
        raise ValueError(f"type id {st.type_id!r} longer than 16 bytes")
    n = len(st.queues)
    recs = [
        _record(TAG_CONFIG, st.config),
        _record(TAG_MSIX, struct.pack("<H", n) + st.msix_table + bytes(int(p) for p in st.msix_pending)),
        _record(TAG_VREGS, _VREGS.pack(st.reject_count, st.last_reject)),
    ]
    for i, q in enumerate(st.queues):
        snap = q.adi.pack()
        recs.append(_record(TAG_QUEUE, _QUEUE.pack(i, int(q.enabled), 0, *q.regs, len(snap)) + snap))
    body = b"".join(recs)
    total = _HDR.size + len(body) + _REC.size + 4
    head = _HDR.pack(MAGIC, VERSION, _HDR.size, total, tid, n, 0)
    crc = zlib.crc32(head + body)
    return head + body + _REC.pack(TAG_END, 0, 4) + struct.pack("<I", crc)


def _record(tag: int, payload: bytes) -> bytes:
    return _REC.pack(tag, 0, len(payload)) + payload


def decode(data: bytes, *, type_id: str, num_queues: int) -> VdevState:
    """Parse and check a stream for a VDEV of ``type_id`` with ``num_queues`` queues."""
    if len(data) < _HDR.size + _REC.size + 4:
        raise StreamError(f"stream of {len(data)} bytes is shorter than header + trailer")
    magic, version, hdr_len, total, tid, n, _rsv = _HDR.unpack_from(data)
    if magic != MAGIC:
        raise StreamError(f"bad magic {magic!r} (not a SIOV VDEV state stream)")
    if version != VERSION:
        raise StreamError(f"stream version {version}, this VDCM reads version {VERSION}")
    if hdr_len != _HDR.size or total != len(data):
        raise StreamError(f"header says {hdr_len} B header / {total} B total, got {_HDR.size} / {len(data)}")
    end = len(data) - _REC.size - 4
    tag, flags, length = _REC.unpack_from(data, end)
    if (tag, flags, length) != (TAG_END, 0, 4):
        raise StreamError("no END record at the end of the stream (truncated?)")
    (crc,) = struct.unpack_from("<I", data, end + _REC.size)
    if zlib.crc32(data[:end]) != crc:
        raise StreamError("checksum mismatch: the stream was corrupted")
    got_type = tid.rstrip(b"\0").decode(errors="replace")
    if got_type != type_id:
        raise StreamError(f"stream is of type {got_type!r}, the destination VDEV is {type_id!r}")
    if n != num_queues:
        raise StreamError(f"stream has {n} queues, the destination VDEV {num_queues}")
    pos = hdr_len
    seen: set[int] = set()
    config = msix_table = b""
    pending: tuple[bool, ...] = ()
    rej = (0, 0)
    queues: dict[int, QueueState] = {}
    while pos < end:
        if pos + _REC.size > end:
            raise StreamError(f"record header at {pos} runs past the trailer")
        tag, flags, length = _REC.unpack_from(data, pos)
        pos += _REC.size
        payload = data[pos : pos + length]
        if flags or pos + length > end:
            raise StreamError(f"record tag {tag} at {pos}: flags {flags}, length {length} invalid")
        pos += length
        if tag != TAG_QUEUE and tag in seen:
            raise StreamError(f"record tag {tag} twice")
        seen.add(tag)
        if tag == TAG_CONFIG:
            if length != CONFIG_BYTES:
                raise StreamError(f"CONFIG record of {length} bytes")
            config = payload
        elif tag == TAG_MSIX:
            if length != 2 + 17 * n or struct.unpack_from("<H", payload)[0] != n:
                raise StreamError("MSIX record does not match the queue count")
            msix_table = payload[2 : 2 + 16 * n]
            raw = payload[2 + 16 * n :]
            if any(b > 1 for b in raw):
                raise StreamError("MSIX pending byte not 0/1")
            pending = tuple(bool(b) for b in raw)
        elif tag == TAG_VREGS:
            if length != _VREGS.size:
                raise StreamError("VREGS record length")
            rej = _VREGS.unpack(payload)
        elif tag == TAG_QUEUE:
            queues_entry = _queue(payload, n)
            q, qs = queues_entry
            if q in queues:
                raise StreamError(f"queue {q} twice")
            queues[q] = qs
        else:
            raise StreamError(f"unknown record tag {tag} (version {VERSION} defines 1-4)")
    for tag, name in ((TAG_CONFIG, "CONFIG"), (TAG_MSIX, "MSIX"), (TAG_VREGS, "VREGS")):
        if tag not in seen:
            raise StreamError(f"{name} record missing")
    if sorted(queues) != list(range(n)):
        raise StreamError(f"QUEUE records for {sorted(queues)}, expected 0..{n - 1}")
    return VdevState(got_type, config, msix_table, pending, rej[0], rej[1], tuple(queues[q] for q in range(n)))


def _queue(payload: bytes, n: int) -> tuple[int, QueueState]:
    if len(payload) < _QUEUE.size:
        raise StreamError("QUEUE record too short")
    v = _QUEUE.unpack_from(payload)
    q, enabled, _rsv, regs, snap_len = v[0], v[1], v[2], v[3:12], v[12]
    if q >= n or enabled > 1:
        raise StreamError(f"QUEUE record: queue {q} / enabled {enabled} invalid")
    if len(payload) != _QUEUE.size + snap_len:
        raise StreamError(f"queue {q}: snapshot length {snap_len} does not match the record")
    try:
        snap = AdiSnapshot.unpack(payload[_QUEUE.size :])
    except ValueError as exc:
        raise StreamError(f"queue {q}: {exc}") from exc
    return q, QueueState(bool(enabled), tuple(regs), snap)
