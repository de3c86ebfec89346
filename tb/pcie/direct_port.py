"""A zero-time link between two cocotbext-pcie objects, for the fast link mode.

cocotbext-pcie's ``SimPort`` models the data link layer (sequence numbers, ACK/NAK, credit-based
flow control, DLLPs, serialisation time). ``DirectPort`` keeps only what the objects above it
need: an in-order queue per direction, one receive task, and the per-hop TLP copy (through
``cocotbext.pcie.core.port.Tlp``, so PASID prefixes survive as they do on a ``SimPort`` once
``tb.pcie.pasid_tlp.install()`` ran). TLPs arrive in zero simulated time; nothing is
back-pressured. The accurate mode keeps ``SimPort``: every simulated-time figure comes from it.

``rc_direct_port(rc)`` adds a root port whose downstream link is a ``DirectPort``;
``device_direct_port(dev)`` gives a ``Device`` one. Both retire the ``SimPort`` cocotbext-pcie
created in the constructor: its background tasks (started unconditionally in ``Port.__init__``)
would otherwise try to send flow-control DLLPs over a link that does not exist.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import cocotb
import cocotbext.pcie.core.port as cpport
from cocotb.triggers import Event
from cocotbext.pcie.core import Device, RootComplex
from cocotbext.pcie.core.port import SimPort

log = logging.getLogger(__name__)


class DirectPort:
    """One end of a zero-time link (the interface ``Device``/``Bridge`` use of a port)."""

    def __init__(self) -> None:
        self.log = log
        self.parent: Any = None
        self.rx_handler: Any = None
        self.other: DirectPort | None = None
        self.max_link_speed: int | None = None
        self.max_link_width: int | None = None
        self.cur_link_speed: int | None = None
        self.cur_link_width: int | None = None
        self.tlps_received = 0
        self._rx: deque[Any] = deque()
        self._wake = Event()
        cocotb.start_soon(self._run_receive())

    def connect(self, other: Any) -> None:
        if isinstance(other, DirectPort):
            if self.other is not None or other.other is not None:
                raise RuntimeError("DirectPort already connected")
            self.other, other.other = other, self
            speed = min(s for s in (self.max_link_speed, other.max_link_speed, 99) if s)
            width = min(w for w in (self.max_link_width, other.max_link_width, 99) if w)
            for p in (self, other):
                p.cur_link_speed = None if speed == 99 else speed
                p.cur_link_width = None if width == 99 else width
        else:
            other.connect(self)

    async def send(self, pkt: Any) -> None:
        pkt.release_fc()
        if self.other is None:
            raise RuntimeError("DirectPort not connected")
        self.other._rx.append(cpport.Tlp(pkt))  # the per-hop copy, as SimPort.ext_recv makes it
        self.other._wake.set()

    async def _run_receive(self) -> None:
        while True:
            if not self._rx:
                self._wake.clear()
                await self._wake.wait()
                continue
            pkt = self._rx.popleft()
            self.tlps_received += 1
            if self.rx_handler is None:
                raise RuntimeError("DirectPort: receive handler not set")
            await self.rx_handler(pkt)


def retire_sim_port(port: SimPort) -> None:
    """Park a ``SimPort`` that will never be connected: its transmit task waits forever and a
    flow-control update it is asked for is discarded instead of sent."""

    async def discard(_pkt: Any) -> None:
        return None

    port.fc_initialized = True  # no InitFC handshake
    port.handle_tx = discard  # the idle-timer FC update (every 10 us) goes nowhere


def rc_direct_port(rc: RootComplex) -> Any:
    """A new root port of ``rc`` whose link is a ``DirectPort``; returns the root port bridge."""
    bridge = rc.default_downstream_bridge()
    retire_sim_port(bridge.downstream_port)
    bridge.set_downstream_port(DirectPort())
    # what RootComplex.make_port copies when it builds the bridge itself
    bridge.pcie_cap.max_payload_size_supported = rc.upstream_bridge.pcie_cap.max_payload_size_supported
    bridge.pcie_cap.extended_tag_supported = rc.upstream_bridge.pcie_cap.extended_tag_supported
    return rc.make_port(bridge=bridge)


def device_direct_port(dev: Device) -> DirectPort:
    """Replace ``dev``'s upstream ``SimPort`` by a ``DirectPort`` (call before connecting)."""
    retire_sim_port(dev.upstream_port)
    port = DirectPort()
    dev.set_port(port)
    return port
