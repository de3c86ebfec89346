"""Full-chip test environment: clock, reset, root complex, the RTL endpoint on a root port.

``Env(dut)`` builds the cocotbext-pcie topology ``RootComplex → RootPort → EpDevice(RTL)`` and
``await env.start()`` resets the DUT and enumerates it through the RTL's own config space.
The root complex class is injectable (the IOMMU-equipped one lives in ``tb/pcie/iommu_rc.py``).

The link mode follows the build: on ``ep_top`` (accurate mode) the endpoint is ``EpDevice`` on a
cocotbext-pcie ``SimPort`` link and Python drives the clock; on ``ep_fast_top`` (fast mode,
``tb/fast/``) it is ``FastEpDevice`` on a ``DirectPort``, the clock runs in HDL and the DMA data
path stays in C++. ``env.link`` says which one ran.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.pcie.core import RootComplex
from cocotbext.pcie.core.pci import PciDevice

from siov_sim.tb.coverage import once, sample_backpressure
from siov_sim.tb.fast.link import FastEpDevice, is_fast_top
from siov_sim.tb.pcie.direct_port import rc_direct_port
from siov_sim.tb.pcie.ep_device import EpDevice
from siov_sim.tb.pcie.iommu_rc import IommuRootComplex

log = logging.getLogger(__name__)

CLK_PERIOD_NS = 4  # 250 MHz user clock: 256 bit x 250 MHz = 8 GB/s datapath


async def reset(clk: SimHandleBase, rst: SimHandleBase, cycles: int = 8) -> None:
    """Synchronous active-high reset for ``cycles`` clocks (then one more to settle)."""
    rst.value = 1
    await ClockCycles(clk, cycles)
    rst.value = 0
    await RisingEdge(clk)


class Env:
    def __init__(self, dut: SimHandleBase, rc: RootComplex | None = None, *,
                 max_payload_size: int = 2, max_read_request_size: int = 2,
                 link_speed: int = 3, link_width: int = 16) -> None:
        self.dut = dut
        logging.getLogger("cocotb.pcie").setLevel(logging.WARNING)
        self.rc = rc if rc is not None else RootComplex()
        # the host side accepts up to 512 B payloads; the endpoint advertises what it supports
        self.rc.max_payload_size = max_payload_size
        self.rc.max_read_request_size = max_read_request_size
        self.link = "fast" if is_fast_top(dut) else "accurate"
        self.ep: EpDevice | FastEpDevice
        if self.link == "fast":
            if not isinstance(self.rc, IommuRootComplex):
                raise TypeError("the fast link needs the IOMMU root complex (its DMA path is the IOMMU's)")
            if os.environ.get("SIOV_FAST_CLOCK") == "python":  # bench variant: ep_fast_top ExtClock=1
                Clock(dut.ext_clk, CLK_PERIOD_NS, unit="ns").start()
            self.ep = FastEpDevice(dut, self.rc)  # clock: generated in ep_fast_top
            self.root_port = rc_direct_port(self.rc)
        else:
            Clock(dut.clk, CLK_PERIOD_NS, unit="ns").start()
            self.ep = EpDevice(dut, dut.clk)
            self.root_port = self.rc.make_port()
        self.ep.upstream_port.max_link_speed = link_speed
        self.ep.upstream_port.max_link_width = link_width
        self.root_port.connect(self.ep)
        self.dev: PciDevice | None = None

    async def start(self, enumerate_bus: bool = True) -> PciDevice | None:
        await reset(self.dut.clk, self.dut.rst)
        if enumerate_bus:
            await self.rc.enumerate()
            self.dev = self.find_endpoint()
        return self.dev

    def find_endpoint(self) -> PciDevice:
        """The first type-0 function the root complex found below our root port."""
        def walk(bus: Any) -> PciDevice | None:
            for d in bus.devices:
                if d.header_type == 0:
                    return d  # type: ignore[no-any-return]
                if d.subordinate is not None and (found := walk(d.subordinate)) is not None:
                    return found
            return None

        found = walk(self.rc.host_bridge.bus)
        if found is None:
            raise RuntimeError("enumeration found no endpoint function")
        return found

    def tlp_counts(self) -> tuple[int, int]:
        """(TLPs the RTL received, TLPs the RTL sent) so far, counted the same way in both modes."""
        if isinstance(self.ep, FastEpDevice):
            return self.ep.tlps_to_rtl, self.ep.tlps_up
        return self.ep.tlps_down, self.ep.tlps_up

    def check_link_clean(self) -> None:
        """No malformed TLP and no stream protocol error came out of the RTL."""
        errs = self.ep.protocol_errors
        assert not errs, f"RTL link errors: {errs[:5]}"
        self.sample_backpressure()

    def sample_backpressure(self) -> None:
        """Functional coverage: which streams saw backpressure (accurate link; the fast link has
        no cycle-level streams)."""
        if isinstance(self.ep, FastEpDevice):
            return
        for name, st in self.ep.stream_stats().items():
            if st.stall_cycles:
                once(sample_backpressure, name, "stall")
            if st.idle_cycles and name.startswith("rx_"):
                once(sample_backpressure, name, "gap")
