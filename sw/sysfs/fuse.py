"""Serve a :class:`~.tree.SysfsTree` as a real filesystem through FUSE (mfusepy + libfuse3).

Why mfusepy: it is the maintained fork of fusepy (ctypes bindings for the high-level libfuse 2
and 3 API, releases in 2025/26, used by ratarmount), a pure-Python wheel that needs only
Debian's ``libfuse3-3`` at run time. Its handlers are plain blocking functions on a FUSE thread,
which is exactly what :class:`~.bridge.SimBridge` turns into requests for the simulation
thread. pyfuse3 would need a C build against ``libfuse3-dev`` and runs its own trio event loop,
a second scheduler beside cocotb's for no gain here.

Mount options: ``direct_io`` (every read/write reaches the tree with the caller's offset and
length, nothing is cached: a second ``lspci`` sees live registers), zero attribute/entry
timeouts (a VDEV appears in ``bus/mdev/devices`` right after ``create``), one FUSE thread
(``-s``: requests are served in order, the simulation is single-threaded anyway).

:class:`SysfsServer` owns the mount: ``start()`` mounts in a daemon thread and waits until the
mount point is live, ``await serve(...)`` runs the bridge in the simulation, ``await stop()``
unmounts (lazily, so a shell sitting in the tree does not block it) and keeps serving until the
FUSE thread has exited.
"""

from __future__ import annotations

import ctypes.util
import errno
import logging
import os
import shutil
import stat as st
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from siov_sim.sw.bus import Runtime
from siov_sim.sw.sysfs.bridge import BridgeClosed, SimBridge
from siov_sim.sw.sysfs.tree import Kind, SysfsTree

log = logging.getLogger(__name__)
T = TypeVar("T")


def unavailable() -> str | None:
    """Why a FUSE mount cannot work here, or None when it can."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing (no FUSE in this kernel or container)"
    if ctypes.util.find_library("fuse3") is None:
        return "libfuse3 is not installed (Debian package fuse3; `make venv` installs it as root)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"mfusepy cannot be loaded: {exc}"
    if os.geteuid() != 0 and shutil.which("fusermount3") is None:
        return "not root and no fusermount3"
    return None


def is_mounted(path: Path) -> bool:
    """From /proc/self/mountinfo, without touching the file system: a stat of our own mount from
    the simulation thread would wait for the simulation thread to answer it."""
    target = os.path.abspath(path)  # no resolve(): an lstat of the mount would call into it
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4].encode().decode("unicode_escape") == target for line in f)
    except OSError:
        return os.path.ismount(target)


def is_stale(path: Path) -> bool:
    """A mount whose FUSE server is gone (ENOTCONN). Never call it on a mount this thread serves."""
    if not is_mounted(path):
        return False
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno in (errno.ENOTCONN, errno.ECONNABORTED, errno.ENODEV)
    return False


def force_unmount(path: Path) -> bool:
    """Lazy unmount (``umount2(MNT_DETACH)``; also of a stale mount left by a killed simulation).

    Called from a thread that is not serving the tree, or for a mount nobody serves."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(os.path.abspath(path).encode(), 2) == 0:  # MNT_DETACH
        return True
    for cmd in (["fusermount3", "-u", "-z", str(path)], ["umount", "-l", str(path)]):
        if shutil.which(cmd[0]) and subprocess.run(cmd, capture_output=True, check=False).returncode == 0:
            return True
    return False


class SysfsOps:
    """mfusepy operations: each one is one request to the simulation through the bridge."""

    use_ns = True

    def __init__(self, tree: SysfsTree, bridge: SimBridge) -> None:
        self.tree = tree
        self.bridge = bridge
        self._t0 = int(time.time() * 1e9)

    def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        from mfusepy import FuseOSError

        try:
            return self.bridge.call(fn)
        except BridgeClosed as exc:
            raise FuseOSError(errno.ENODEV) from exc
        except OSError as exc:
            raise FuseOSError(exc.errno or errno.EIO) from exc
        except Exception as exc:  # a bug or a device error on the simulation side: EIO, logged there
            log.exception("sysfs request failed")
            raise FuseOSError(errno.EIO) from exc

    def getattr(self, path: str, fh: Any = None) -> dict[str, int]:
        s = self._call(lambda: self.tree.stat(path))
        kind = {Kind.DIR: st.S_IFDIR, Kind.FILE: st.S_IFREG, Kind.LINK: st.S_IFLNK}[s.kind]
        t = self._t0
        return {"st_mode": kind | s.mode, "st_nlink": 2 if s.kind is Kind.DIR else 1, "st_size": s.size,
                "st_uid": 0, "st_gid": 0, "st_atime": t, "st_mtime": t, "st_ctime": t}

    def readdir(self, path: str, fh: Any) -> list[str]:
        return [".", "..", *self._call(lambda: self.tree.listdir(path))]

    def readlink(self, path: str) -> str:
        return self._call(lambda: self.tree.readlink(path))

    def open(self, path: str, flags: int) -> int:
        acc = flags & os.O_ACCMODE
        self._call(lambda: self.tree.check_open(path, acc != os.O_WRONLY, acc != os.O_RDONLY))
        return 0

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        from mfusepy import FuseOSError

        raise FuseOSError(errno.EACCES)  # sysfs has no user-created files

    def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
        return self._call(lambda: self.tree.read(path, size, offset))

    def write(self, path: str, data: bytes, offset: int, fh: Any) -> int:
        return self._call(lambda: self.tree.write(path, bytes(data), offset))

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        return 0  # O_TRUNC of an attribute (`echo x > attr`) is accepted and ignored, as in sysfs

    def flush(self, path: str, fh: Any) -> int:
        return 0

    def release(self, path: str, fh: Any) -> int:
        return 0


class SysfsServer:
    """One FUSE mount of a tree (see the module docstring)."""

    def __init__(self, tree: SysfsTree, mountpoint: Path, bridge: SimBridge | None = None) -> None:
        self.tree = tree
        self.mountpoint = Path(mountpoint).resolve()
        self.bridge = bridge or SimBridge()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stop = False

    async def start(self, runtime: Runtime, timeout_s: float = 10.0) -> None:
        """Mount (in a FUSE thread) and wait until the mount is live, serving the requests that
        libfuse and the kernel send meanwhile (the first getattr of the root comes right away)."""
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(f"cannot mount the sysfs tree: {reason}")
        if is_stale(self.mountpoint):  # left by a simulation that was killed
            force_unmount(self.mountpoint)
        if is_mounted(self.mountpoint):
            raise RuntimeError(f"{self.mountpoint} is mounted already (another simulation? use another path)")
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        from mfusepy import FUSE

        def run() -> None:
            try:
                FUSE(SysfsOps(self.tree, self.bridge), str(self.mountpoint), foreground=True, nothreads=True,
                     direct_io=True, attr_timeout=0, entry_timeout=0, negative_timeout=0, fsname="siov-sysfs",
                     subtype="siov")
            except BaseException as exc:  # reported by start()/stop(), never lost
                self._error = exc

        self._thread = threading.Thread(target=run, name="siov-sysfs-fuse", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not is_mounted(self.mountpoint):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"FUSE mount at {self.mountpoint} did not come up: {self._error}")
            if not await self.bridge.run_pending():
                time.sleep(0.005)
                await runtime.sleep(100.0)
        log.info("sysfs tree mounted at %s", self.mountpoint)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def request_stop(self) -> None:
        """Thread/signal safe: :meth:`serve` returns at its next turn."""
        self._stop = True

    @property
    def stop_requested(self) -> bool:
        return self._stop

    async def serve(self, runtime: Runtime, *, idle_wait_s: float = 0.0, step_ns: float = 1000.0) -> None:
        await self.bridge.serve(runtime, lambda: self._stop, idle_wait_s=idle_wait_s, step_ns=step_ns)

    async def stop(self, runtime: Runtime, timeout_s: float = 10.0) -> None:
        """Unmount, serve what the FUSE thread still asks until it has exited, close the bridge."""
        self._stop = True
        if self._thread is None:
            return
        # The unmount runs beside us: the kernel may still send requests that we must serve.
        umount = threading.Thread(target=force_unmount, args=(self.mountpoint,), name="siov-sysfs-umount")
        umount.start()
        deadline = time.monotonic() + timeout_s
        while (self._thread.is_alive() or umount.is_alive()) and time.monotonic() < deadline:
            if not await self.bridge.run_pending():
                self._thread.join(0.01)
                await runtime.sleep(100.0)
        self.bridge.close()
        if self._thread.is_alive():
            log.warning("FUSE thread of %s did not exit", self.mountpoint)
        log.info("sysfs tree at %s unmounted (%d requests served)", self.mountpoint, self.bridge.served)
