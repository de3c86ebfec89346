"""VFIO migration v2: the device state machine of ``<linux/vfio.h>`` and the data transfer fd.

A VFIO device that can be migrated implements :class:`VfioMigrationOps` (Linux: ``struct
vfio_migration_ops``); the VFIO core (:class:`~siov_sim.sw.vfio.vfio.VfioDevice`) serves
``VFIO_DEVICE_FEATURE`` with ``VFIO_DEVICE_FEATURE_MIGRATION`` (GET: the supported
``VFIO_MIGRATION_*`` flags) and ``VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE`` (SET: go to a state,
maybe receiving a data fd; GET: the state now).

The states and arcs are the header's (``enum vfio_device_mig_state``). A SET to a state that is
not one arc away is a *combination transition*: the core walks it one arc at a time along the
path :func:`mig_get_next_state` chooses, the same table the kernel's
``vfio_mig_get_next_state()`` encodes (shortest path; RUNNING_P2P only when the device has
``VFIO_MIGRATION_P2P``). The kernel of Debian 12 (6.1 uAPI) has no PRE_COPY states, so neither
do we: a SIOV VDEV's device state is a few hundred bytes, which needs no device pre-copy.
The guest memory is what pre-copy is for, and dirty tracking covers it (``VFIO_IOMMU_DIRTY_PAGES``).

Arcs that start a data transfer session return a :class:`MigrationFile`: STOP -> STOP_COPY
(``read()`` the device state until it returns ``b""``), STOP -> RESUMING (``write()`` the
stream). Leaving STOP_COPY or RESUMING ends the session: the file is disabled (ENODEV) and, for
RESUMING -> STOP, the device checks and loads what was written or fails the arc.
"""

from __future__ import annotations

import errno
from itertools import count
from typing import Protocol, runtime_checkable

from siov_sim.sw.vfio import uapi as u
from siov_sim.sw.vfio.device_ops import VfioError

ERROR = u.VFIO_DEVICE_STATE_ERROR
STOP = u.VFIO_DEVICE_STATE_STOP
RUNNING = u.VFIO_DEVICE_STATE_RUNNING
STOP_COPY = u.VFIO_DEVICE_STATE_STOP_COPY
RESUMING = u.VFIO_DEVICE_STATE_RESUMING
RUNNING_P2P = u.VFIO_DEVICE_STATE_RUNNING_P2P

STATE_NAMES = {
    ERROR: "ERROR",
    STOP: "STOP",
    RUNNING: "RUNNING",
    STOP_COPY: "STOP_COPY",
    RESUMING: "RESUMING",
    RUNNING_P2P: "RUNNING_P2P",
}

#: (current, wanted) -> the next state on the way (one arc). The header's arcs are
#: RUNNING <-> RUNNING_P2P <-> STOP, STOP <-> STOP_COPY and STOP <-> RESUMING; everything else is
#: a combination of them, routed through RUNNING_P2P and STOP.
_NEXT: dict[int, dict[int, int]] = {
    STOP: {STOP: STOP, RUNNING: RUNNING_P2P, STOP_COPY: STOP_COPY, RESUMING: RESUMING, RUNNING_P2P: RUNNING_P2P},
    RUNNING: {STOP: RUNNING_P2P, RUNNING: RUNNING, STOP_COPY: RUNNING_P2P, RESUMING: RUNNING_P2P,
              RUNNING_P2P: RUNNING_P2P},
    STOP_COPY: {STOP: STOP, RUNNING: STOP, STOP_COPY: STOP_COPY, RESUMING: STOP, RUNNING_P2P: STOP},
    RESUMING: {STOP: STOP, RUNNING: STOP, STOP_COPY: STOP, RESUMING: RESUMING, RUNNING_P2P: STOP},
    RUNNING_P2P: {STOP: STOP, RUNNING: RUNNING, STOP_COPY: STOP, RESUMING: STOP, RUNNING_P2P: RUNNING_P2P},
}  # fmt: skip

#: Migration flags a state needs the device to support (ERROR can never be asked for).
_STATE_FLAGS = {
    STOP: u.VFIO_MIGRATION_STOP_COPY,
    RUNNING: u.VFIO_MIGRATION_STOP_COPY,
    STOP_COPY: u.VFIO_MIGRATION_STOP_COPY,
    RESUMING: u.VFIO_MIGRATION_STOP_COPY,
    RUNNING_P2P: u.VFIO_MIGRATION_STOP_COPY | u.VFIO_MIGRATION_P2P,
}


def state_name(state: int) -> str:
    return STATE_NAMES.get(state, f"state {state}")


def _supported(flags: int, state: int) -> bool:
    need = _STATE_FLAGS.get(state)
    return need is not None and flags & need == need


def mig_get_next_state(flags: int, cur: int, new: int) -> int:
    """The next arc from ``cur`` toward ``new`` for a device with migration ``flags``.

    EINVAL for a state the device does not support (or ERROR, or an unknown number) and from
    ERROR (only VFIO_DEVICE_RESET leaves it). States the device lacks are skipped over, as the
    kernel does: without P2P, RUNNING -> STOP is one arc.
    """
    if cur == ERROR:
        raise VfioError(errno.EINVAL, "device is in ERROR: VFIO_DEVICE_RESET first")
    if not _supported(flags, cur):
        raise VfioError(errno.EINVAL, f"current state {state_name(cur)} not supported")
    if not _supported(flags, new):
        raise VfioError(errno.EINVAL, f"state {state_name(new)} not supported by this device")
    nxt = _NEXT[cur][new]
    while not _supported(flags, nxt):
        nxt = _NEXT[nxt][new]
    return nxt


def mig_path(flags: int, cur: int, new: int) -> list[int]:
    """Every state a SET from ``cur`` to ``new`` passes through (the last is ``new``)."""
    path: list[int] = []
    while cur != new:
        cur = mig_get_next_state(flags, cur, new)
        path.append(cur)
    return path


_fd_numbers = count(200)


class MigrationFile:
    """The data fd of one transfer session (``anon_inode`` file of a vfio-pci variant driver).

    Saving: :meth:`read` returns the next bytes of the device state, ``b""`` at the end.
    Resuming: :meth:`write` appends to the stream the device loads when RESUMING is left.
    When the session ends (the device leaves STOP_COPY / RESUMING) the file is disabled and
    every call fails with ENODEV; :meth:`close` is close(2).
    """

    def __init__(self, *, saving: bool, data: bytes = b"", limit: int = 1 << 20) -> None:
        self.fd = next(_fd_numbers)
        self.saving = saving
        self._buf = bytearray(data)
        self._pos = 0
        self._limit = limit
        self.disabled = False
        self.closed = False

    def _live(self) -> None:
        if self.closed:
            raise VfioError(errno.EBADF, f"data fd {self.fd} closed")
        if self.disabled:
            raise VfioError(errno.ENODEV, f"data fd {self.fd}: the transfer session has ended")

    def read(self, length: int) -> bytes:
        self._live()
        if not self.saving:
            raise VfioError(errno.EINVAL, "read() on a RESUMING data fd")
        if length < 0:
            raise VfioError(errno.EINVAL, "negative read length")
        out = bytes(self._buf[self._pos : self._pos + length])
        self._pos += len(out)
        return out

    def read_all(self, chunk: int = 4096) -> bytes:
        """What a user loops over: read until end of stream."""
        out = bytearray()
        while part := self.read(chunk):
            out += part
        return bytes(out)

    def write(self, data: bytes) -> int:
        self._live()
        if self.saving:
            raise VfioError(errno.EINVAL, "write() on a STOP_COPY data fd")
        if len(self._buf) + len(data) > self._limit:
            raise VfioError(errno.ENOMEM, f"device state larger than {self._limit} B")
        self._buf += data
        return len(data)

    def written(self) -> bytes:
        return bytes(self._buf)

    def disable(self) -> None:
        self.disabled = True

    def close(self) -> None:
        self.closed = True


class FileTable:
    """The calling process's fd table for data fds (``data_fd`` numbers -> files)."""

    def __init__(self) -> None:
        self._files: dict[int, MigrationFile] = {}

    def install(self, f: MigrationFile) -> int:
        self._files[f.fd] = f
        return f.fd

    def get(self, fd: int) -> MigrationFile:
        f = self._files.get(fd)
        if f is None or f.closed:
            raise VfioError(errno.EBADF, f"fd {fd} is not an open data fd")
        return f

    def close(self, fd: int) -> None:
        self.get(fd).close()
        del self._files[fd]


@runtime_checkable
class VfioMigrationOps(Protocol):
    """What a migratable device driver provides (``struct vfio_migration_ops``)."""

    @property
    def migration_flags(self) -> int:
        """VFIO_MIGRATION_* the device supports (STOP_COPY at least)."""
        ...

    @property
    def migration_state(self) -> int: ...

    async def migration_arc(self, new: int) -> MigrationFile | None:
        """Take one arc of the FSM from the current state to ``new`` (a neighbour). On failure
        raise :class:`VfioError`; the device is then in the old state or in ERROR."""
        ...
