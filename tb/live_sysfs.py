"""The live sysfs tree inside a running simulation (``make sim``, ``make shell``): cocotb glue.

:class:`LiveSysfs` mounts :class:`siov_sim.sw.sysfs.SysfsTree` (PF + VDCM + HostBus; it works in
any link mode because it only uses the HostBus and the drivers) at a directory and serves it
from the simulation:

* during ``make sim``'s scenario, as a background cocotb task (:meth:`serve_in_background`):
  requests are taken between the scenario's own steps, simulated time keeps running;
* in ``make shell`` (:meth:`run_until_stopped`), as the only thing the simulation does: it blocks
  in wall time waiting for the next request (no CPU while idle), until SIGINT/SIGTERM/SIGHUP.

How requests cross threads (never into cocotb from a FUSE thread): ``sw/sysfs/bridge.py``.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import cocotb

from siov_sim.sw.bus import HostBus
from siov_sim.sw.driver.pf import PfDriver
from siov_sim.sw.sysfs import SysfsServer, SysfsTree, unavailable
from siov_sim.sw.vdcm.vdcm import Vdcm

log = logging.getLogger("siov_sim.sim")


class LiveSysfs:
    def __init__(self, server: SysfsServer, bus: HostBus) -> None:
        self.server = server
        self.bus = bus
        self.tree = server.tree
        self.path = server.mountpoint
        self._task: Any = None

    @classmethod
    async def mount(
        cls, bus: HostBus, pf: PfDriver, vdcm: Vdcm, path: Path, *, parent_bdf: int | None = None
    ) -> tuple[LiveSysfs | None, str]:
        """Mount the tree at ``path``; returns (the mount, "") or (None, why it is not there)."""
        reason = unavailable()
        if reason is not None:
            return None, reason
        server = SysfsServer(SysfsTree(bus, pf, vdcm, parent_bdf=parent_bdf), path)
        # libfuse installs its own SIGINT/SIGTERM/SIGHUP handlers where none is set (it would
        # end the FUSE loop, not the simulation): give the simulation its own first.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _raise_interrupt)
        try:
            await server.start(bus.runtime)
        except RuntimeError as exc:
            return None, str(exc)
        return cls(server, bus), ""

    def hint(self) -> str:
        return self.tree.mount_hint(str(self.path))

    def serve_in_background(self) -> None:
        self._task = cocotb.start_soon(self.server.serve(self.bus.runtime, idle_wait_s=0.0, step_ns=1000.0))

    async def run_until_stopped(self, say: Callable[[str], None]) -> None:
        """Serve until a signal asks to stop (Ctrl-C in ``make shell``)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        stop = self.server.request_stop

        def on_signal(_sig: int, _frame: FrameType | None) -> None:
            stop()

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        say(f"sysfs tree live at {self.path} -- Ctrl-C (or SIGTERM) stops the simulation")
        try:
            await self.server.serve(self.bus.runtime, idle_wait_s=0.05, step_ns=1000.0)
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    async def close(self) -> int:
        """Unmount; returns how many requests were served."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await self.server.stop(self.bus.runtime)
        return self.server.bridge.served


def _raise_interrupt(_sig: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
