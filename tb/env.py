"""Full-chip test environment: clock, reset, root complex, the RTL endpoint on a root port.

``Env(dut)`` builds the cocotbext-pcie topology ``RootComplex → RootPort → EpDevice(RTL)`` and
``await env.start()`` resets the DUT and enumerates it through the RTL's own config space.
The root complex class is injectable (the IOMMU-equipped one lives in ``tb/pcie/iommu_rc.py``).

The link mode follows the build: on ``ep_top`` (accurate mode) the endpoint is ``EpDevice`` on a
cocotbext-pcie ``SimPort`` link and Python drives the clock; on ``ep_fast_top`` (fast mode,
``tb/fast/``) it is ``FastEpDevice`` on a ``DirectPort``, the clock runs in HDL and the DMA data
path stays in C++. On ``ep_ptile_top`` (``make sim HIP=ptile``) the endpoint is the RTL behind
its Intel P-tile wrapper (rtl/hip) and cocotbext-pcie's P-tile hard-IP model, extended in
``tb/pcie/ptile_ext.py``; the IP owns config space, the model generates the clock and the reset
(``reset_status_n``). ``env.link`` says which one ran (``fast``, ``accurate`` or ``ptile``).
"""

from __future__ import annotations

import gc
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
from siov_sim.tb.pcie.ptile_ep import make_ptile_device
from siov_sim.tb.pcie.ptile_ext import PTileExtDevice

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
                 link_speed: int = 3, link_width: int = 16, num_adi: int | None = None) -> None:
        self.dut = dut
        logging.getLogger("cocotb.pcie").setLevel(logging.WARNING)
        self.rc = rc if rc is not None else RootComplex()
        # the host side accepts up to 512 B payloads; the endpoint advertises what it supports
        self.rc.max_payload_size = max_payload_size
        self.rc.max_read_request_size = max_read_request_size
        self.link = "fast" if is_fast_top(dut) else "ptile" if hasattr(dut, "coreclkout_hip") else "accurate"
        self.ep: EpDevice | FastEpDevice | PTileExtDevice
        if self.link == "ptile":
            # the hard IP's own link configuration (gen4 x8, port 1), clock and reset
            self.ep = make_ptile_device(dut, num_adi=num_adi or int(os.environ.get("SIOV_NUM_ADI", "4")))
            self.root_port = self.rc.make_port()
        elif self.link == "fast":
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
        if self.link != "ptile":
            self.ep.upstream_port.max_link_speed = link_speed
            self.ep.upstream_port.max_link_width = link_width
        self.root_port.connect(self.ep)
        self.dev: PciDevice | None = None

    async def start(self, enumerate_bus: bool = True) -> PciDevice | None:
        if self.link == "ptile":  # the IP model releases reset_status_n by itself
            while not int(self.dut.reset_status_n.value):
                await RisingEdge(self.dut.coreclkout_hip)
            await ClockCycles(self.dut.coreclkout_hip, 4)
        else:
            await reset(self.dut.clk, self.dut.rst)
        if enumerate_bus:
            await self.rc.enumerate()
            self.dev = self.find_endpoint()
        # everything built so far (modules, the root complex, the model's tables) lives as long as
        # the simulation: out of the collector's reach, a full collection no longer walks it
        # (bench_cosim: ~5 % more cycles per second with traffic)
        gc.freeze()
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
        if isinstance(self.ep, PTileExtDevice):  # config requests end in the IP, not in the RTL
            return self.ep.tlps_down - self.ep.cfg_requests, self.ep.tlps_up
        return self.ep.tlps_down, self.ep.tlps_up

    def check_link_clean(self) -> None:
        """No malformed TLP and no stream protocol error came out of the RTL."""
        errs = self.ep.protocol_errors
        assert not errs, f"RTL link errors: {errs[:5]}"
        self.sample_backpressure()

    def sample_backpressure(self) -> None:
        """Functional coverage: which streams saw backpressure (accurate link; the fast link has
        no cycle-level streams)."""
        if isinstance(self.ep, (FastEpDevice, PTileExtDevice)):
            return
        for name, st in self.ep.stream_stats().items():
            if st.stall_cycles:
                once(sample_backpressure, name, "stall")
            if st.idle_cycles and name.startswith("rx_"):
                once(sample_backpressure, name, "gap")
