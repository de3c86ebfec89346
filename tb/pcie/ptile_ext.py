"""cocotbext-pcie's Intel P-tile hard-IP model, extended: TLP prefixes, CII, PASID, FLR.

The released model (``cocotbext.pcie.intel.ptile``, 0.2.16) is what the RTL wrapper
``rtl/hip/ep_ptile_top.sv`` is tested against, but four things a SIOV endpoint needs are missing
from it. :class:`PTileExtDevice` subclasses it (no upstream file is patched) and adds them:

* **TLP prefixes both ways.** ``PTilePcieFrame.to_tlp``/``from_tlp`` drop ``tlp_prfx``. Here a
  frame the application sends on ``tx_st`` becomes a :class:`~siov_sim.tb.pcie.pasid_tlp.PasidTlp`
  carrying its prefix (:func:`frame_to_tlp`), and a request from the link is handed to the
  application with its End-End prefix on ``rx_st_tlp_prfx`` (:func:`frame_from_tlp`).
* **Configuration Intercept Interface** (user guide 683059, "Configuration Intercept Interface").
  A configuration request to a DW in ``cii_ranges`` (default: the Intel VSEC range 0xD00-0xFFF)
  is shown to the application on ``cii_req`` / ``cii_addr`` / ``cii_wr`` / ``cii_dout`` /
  ``cii_hdr_first_be`` before the IP executes it. The application holds ``cii_halt`` high to
  stall (it must raise it within ``cii_halt_delay - 1`` clocks of seeing ``cii_req`` rise); at
  the first clock with ``cii_halt`` low the model samples ``cii_override_en`` /
  ``cii_override_din``: for a read the override replaces the completion data, for a write it
  replaces the data written. ``cii_req`` then falls and stays low for at least two clocks.
* **PASID extended capability** in the IP's config space (0x330, as the P-tile places it), with
  PASID Enable / Execute Permission Enable / Privileged Mode Enable reported on ``tl_cfg``
  index 0x18 (bits :data:`TL_CFG_PASID_EN` / ``_EXEC`` / ``_PRIV``). The extended capabilities
  the released model registers in the *standard* list (AER at 0x100, Secondary PCIe at 0x188,
  unreachable there) are moved to the extended list, and a DVSEC placeholder at 0xD00 ends the
  chain so software walks into the CII-served range.
* **TX credit limits net of the IP's own TLPs.** The released model reports the link partner's
  raw credit limits on ``tx_cdts_limit``, although the IP itself also sends TLPs on the link
  (completions to configuration requests, UR completions): an application counting only its own
  TLPs against that limit would drift. Here the limit reported is the link's limit minus what the
  IP's own TLPs consumed, so the application's count is exact (infinite credits read 0). Every
  application TLP is checked against it: one sent without credits is a protocol error.
* **Function Level Reset**: Initiate FLR in Device Control pulses ``flr_rcvd_pf[0]`` and clears
  the function's Command / MSI-X / PASID enables; the model waits for ``flr_completed_pf[0]``.

Everything else (flow control on ``tx_cdts_limit``, ready latencies 27 / 3, the completion buffer
limits, BAR matching with ``rx_st_bar_range``) is the released model's own behaviour.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

from cocotb.triggers import Lock, RisingEdge
from cocotbext.pcie.core.caps import PciExtCap
from cocotbext.pcie.core.tlp import FcType, Tlp, TlpType
from cocotbext.pcie.core.utils import PcieId
from cocotbext.pcie.intel.ptile import PTilePcieDevice
from cocotbext.pcie.intel.ptile.interface import PTilePcieFrame
from cocotbext.pcie.intel.ptile.ptile_model import PTilePcieFunction

from siov_sim.model.pcie.prefix import is_pasid_prefix
from siov_sim.tb.pcie.pasid_tlp import PasidTlp, install

log = logging.getLogger(__name__)

PASID_CAP_DW = 0xCC  # byte 0x330
VSEC_DW = 0x340  # byte 0xD00: the Intel VSEC range, mapped to CII (UG 683059)
TL_CFG_PASID_ADD = 0x18
TL_CFG_PASID_EN, TL_CFG_PASID_EXEC, TL_CFG_PASID_PRIV = 1, 2, 3  # bits of tl_cfg_ctl at 0x18


# ---- frames <-> TLPs with the prefix sideband ---------------------------------------------------
def frame_to_tlp(frame: PTilePcieFrame) -> PasidTlp:
    """An application TX frame as a TLP, its ``tlp_prfx`` (0 = none) as the End-End prefix."""
    hdr = frame.hdr.to_bytes(16, "big")
    header_dws = 4 if (frame.hdr >> 125) & 1 else 3
    data = b"".join(struct.pack("<L", dw) for dw in frame.data)
    pre = frame.tlp_prfx.to_bytes(4, "big") if frame.tlp_prfx else b""
    return PasidTlp.unpack(pre + hdr[: 4 * header_dws] + data)


def frame_from_tlp(tlp: Tlp) -> PTilePcieFrame:
    """A TLP from the link as an RX frame; its PASID prefix (else its first prefix) on tlp_prfx."""
    frame = PTilePcieFrame.from_tlp(tlp)  # header, data and parity; the prefix is dropped here
    prefixes = list(getattr(tlp, "prefixes", ()))
    pasid = [p for p in prefixes if is_pasid_prefix(p)]
    frame.tlp_prfx = pasid[0] if pasid else (prefixes[0] if prefixes else 0)
    frame.update_parity()
    return frame


# ---- capabilities ------------------------------------------------------------------------------
class PasidExtCapability(PciExtCap):  # type: ignore[misc]
    """PASID extended capability (PCIe Base 6.0 §7.8.8): 20-bit PASIDs, privileged mode."""

    def __init__(self, *, max_width: int = 20, exec_supported: bool = False, priv_supported: bool = True) -> None:
        super().__init__()
        self.cap_id = 0x001B
        self.cap_ver = 1
        self.length = 2
        self.max_width = max_width
        self.exec_supported = exec_supported
        self.priv_supported = priv_supported
        self.enable = False
        self.exec_enable = False
        self.priv_enable = False

    async def _read_register(self, reg: int) -> int:
        if reg != 1:
            return 0
        val = (self.exec_supported << 1) | (self.priv_supported << 2) | ((self.max_width & 0x1F) << 8)
        return val | (self.enable << 16) | (self.exec_enable << 17) | (self.priv_enable << 18)

    async def _write_register(self, reg: int, data: int, mask: int) -> None:
        if reg == 1 and mask & 0x4:
            self.enable = bool(data >> 16 & 1)
            self.exec_enable = bool(data >> 17 & 1) and self.exec_supported
            self.priv_enable = bool(data >> 18 & 1) and self.priv_supported


class CiiRangePlaceholder(PciExtCap):  # type: ignore[misc]
    """The application's capability at 0xD00, served through CII: here only so the IP's
    capability chain points at it; its body reads 0 unless the application overrides."""

    def __init__(self, cap_id: int = 0x0023, length: int = 0x400 - VSEC_DW) -> None:
        super().__init__()
        self.cap_id = cap_id
        self.cap_ver = 1
        self.length = length

    async def _read_register(self, reg: int) -> int:
        return 0

    async def _write_register(self, reg: int, data: int, mask: int) -> None:
        return None


# ---- the function and the device -----------------------------------------------------------------
class PTileExtFunction(PTilePcieFunction):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cii: PTileExtDevice | None = None
        # the released model puts its extended capabilities in the standard list (unreachable)
        for cap in (self.aer_ext_cap, self.pcie_ext_cap):
            self.deregister_capability(cap)
            self.register_extended_capability(cap, offset=cap.offset)
        self.pasid_cap = PasidExtCapability()
        self.register_extended_capability(self.pasid_cap, offset=PASID_CAP_DW)
        self.vsec_placeholder = CiiRangePlaceholder()
        self.register_extended_capability(self.vsec_placeholder, offset=VSEC_DW)
        self.pcie_cap.function_level_reset_capability = True
        self.pcie_cap.extended_fmt_field_supported = True
        self.pcie_cap.end_end_tlp_prefix_supported = True
        self.pcie_cap.max_end_end_tlp_prefix = 1
        self.pcie_cap.initiate_function_level_reset = self._flr

    def _for_me(self, tlp: Tlp) -> bool:
        return bool(tlp.completer_id.device == self.device_num and tlp.completer_id.function == self.function_num)

    def _capture_bus(self, tlp: Tlp) -> None:
        if self.bus_num != tlp.completer_id.bus:
            self.pcie_id = self.pcie_id._replace(bus=tlp.completer_id.bus)

    async def handle_config_0_read_tlp(self, tlp: Tlp) -> None:
        if not self._for_me(tlp):
            await super().handle_config_0_read_tlp(tlp)  # UR, as the released model
            return
        self._capture_bus(tlp)
        reg = tlp.address >> 2
        override, din = (False, 0)
        if self.cii is not None:
            override, din = await self.cii.cii_access(reg, tlp.first_be, False, 0, self.function_num)
        data = din if override else await self.read_config_register(reg)
        cpl = Tlp.create_completion_data_for_tlp(tlp, self.pcie_id)
        cpl.set_data(struct.pack("<L", data & 0xFFFF_FFFF))
        cpl.byte_count = 4
        await self.upstream_send(cpl)

    async def handle_config_0_write_tlp(self, tlp: Tlp) -> None:
        if not self._for_me(tlp):
            await super().handle_config_0_write_tlp(tlp)
            return
        self._capture_bus(tlp)
        reg = tlp.address >> 2
        (data,) = struct.unpack("<L", tlp.get_data())
        if self.cii is not None:
            override, din = await self.cii.cii_access(reg, tlp.first_be, True, data, self.function_num)
            if override:
                data = din
        await self.write_config_register(reg, data, tlp.first_be)
        await self.upstream_send(Tlp.create_completion_for_tlp(tlp, self.pcie_id))

    async def _flr(self) -> None:
        self.memory_space_enable = False
        self.bus_master_enable = False
        self.msix_cap.msix_enable = False
        self.msix_cap.msix_function_mask = False
        self.pasid_cap.enable = self.pasid_cap.exec_enable = self.pasid_cap.priv_enable = False
        if self.cii is not None:
            await self.cii.flr_handshake(self.function_num)


class PTileExtDevice(PTilePcieDevice):  # type: ignore[misc]
    """The P-tile model with prefixes, CII, PASID capability and FLR (see the module docstring).

    Extra keyword arguments: ``cii_ranges`` (list of ``(first_dw, last_dw)``, default the VSEC
    range 0x340-0x3FF), ``cii_halt_delay`` (clocks between raising ``cii_req`` and the first
    ``cii_halt`` sample, default 2).
    """

    # the released constructor sets default_function and creates the function in one go: keep ours
    @property
    def default_function(self) -> type:
        return PTileExtFunction

    @default_function.setter
    def default_function(self, value: type) -> None:
        pass

    def __init__(self, *args: Any, cii_ranges: list[tuple[int, int]] | None = None, cii_halt_delay: int = 2,
                 **kwargs: Any) -> None:
        install()  # the link's per-hop copy must keep prefixes
        self.cii_ranges = list(cii_ranges) if cii_ranges is not None else [(VSEC_DW, 0x3FF)]
        self.cii_halt_delay = max(1, cii_halt_delay)
        self._cii_lock = Lock()
        self.cii_requests = 0  # requests shown on CII
        self.cii_overrides = 0  # of which the application overrode the data
        self.tlps_down = 0  # TLPs from the link to the IP (config included)
        self.cfg_requests = 0  # of which configuration requests (answered by the IP)
        self.tlps_up = 0  # TLPs the application sent on tx_st
        self.protocol_errors: list[str] = []  # application frames the IP would reject
        # credits consumed on the link by the IP's own TLPs and by the application's, per FC type
        self.ip_consumed = {t: [0, 0] for t in (FcType.P, FcType.NP, FcType.CPL)}
        self.app_consumed = {t: [0, 0] for t in (FcType.P, FcType.NP, FcType.CPL)}
        super().__init__(*args, **kwargs)
        for f in self.functions:
            f.cii = self

    # -- CII ---------------------------------------------------------------------------------
    def cii_connected(self) -> bool:
        return all(s is not None for s in (self.cii_req, self.cii_halt, self.cii_override_en, self.cii_override_din))

    async def cii_access(self, reg: int, first_be: int, write: bool, data: int, func_num: int) -> tuple[bool, int]:
        """Show one config request on CII; ``(override, data)`` as the application answered."""
        if not self.cii_connected() or not any(lo <= reg <= hi for lo, hi in self.cii_ranges):
            return False, 0
        edge = RisingEdge(self.coreclkout_hip)
        async with self._cii_lock:
            await edge
            self.cii_addr.value = reg & 0x3FF
            self.cii_wr.value = int(write)
            self.cii_dout.value = data if write else 0
            self.cii_hdr_first_be.value = first_be & 0xF
            self.cii_func_num.value = func_num & 0x7
            self.cii_hdr_poisoned.value = 0
            self.cii_req.value = 1
            self.cii_requests += 1
            for _ in range(self.cii_halt_delay):
                await edge
            while int(self.cii_halt.value):
                await edge
            override = bool(int(self.cii_override_en.value))
            din = int(self.cii_override_din.value)
            self.cii_req.value = 0
            self.cii_wr.value = 0
            await edge
            await edge
        self.cii_overrides += override
        return override, din

    # -- FLR ---------------------------------------------------------------------------------
    async def flr_handshake(self, func_num: int) -> None:
        if self.flr_rcvd_pf is None or self.flr_completed_pf is None:
            return
        edge = RisingEdge(self.coreclkout_hip)
        await edge
        self.flr_rcvd_pf.value = 1 << func_num
        self.flr_rcvd_pf_num.value = func_num
        await edge
        self.flr_rcvd_pf.value = 0
        while not (int(self.flr_completed_pf.value) >> func_num) & 1:
            await edge

    # -- TLPs: the prefix sideband -----------------------------------------------------------
    async def _run_tx_logic(self) -> None:
        while True:
            frame = await self.tx_sink.recv()
            self.tlps_up += 1
            if frame.err:
                self.protocol_errors.append(f"tx_st_err set on {frame!r}")
            tlp = frame_to_tlp(frame)
            if tlp.prefixes and tlp.fmt_type in {TlpType.CPL, TlpType.CPL_DATA}:
                self.protocol_errors.append(f"completion with a TLP prefix: {tlp!r}")
            self._check_app_credits(tlp)
            await super().upstream_send(tlp)  # not self.upstream_send: that one counts IP TLPs

    # -- TX credits ----------------------------------------------------------------------------
    def _fc(self, fc_type: FcType) -> tuple[Any, Any]:
        st = self.upstream_port.fc_state[0]
        return {FcType.P: (st.ph, st.pd), FcType.NP: (st.nph, st.npd), FcType.CPL: (st.cplh, st.cpld)}[fc_type]

    def app_credit_limit(self, fc_type: FcType, data: bool) -> int:
        """What ``tx_cdts_limit`` reports: the link's limit minus the IP's own use (0 = infinite)."""
        fc = self._fc(fc_type)[int(data)]
        if fc.tx_is_infinite():
            return 0
        return int(fc.tx_credit_limit - self.ip_consumed[fc_type][int(data)]) & fc.tx_field_mask

    def _check_app_credits(self, tlp: Tlp) -> None:
        t = tlp.get_fc_type()
        for k, need in enumerate((1, tlp.get_data_credits())):
            fc = self._fc(t)[k]
            self.app_consumed[t][k] += need
            if fc.tx_is_infinite() or not need:
                continue
            left = (self.app_credit_limit(t, bool(k)) - self.app_consumed[t][k]) & fc.tx_field_mask
            if left > (fc.tx_field_mask + 1) // 2:
                self.protocol_errors.append(f"TX credit overrun ({t.name} {'data' if k else 'header'}): {tlp!r}")

    async def upstream_send(self, tlp: Tlp) -> None:
        """TLPs the IP sends by itself (config completions, URs): their credits are the IP's."""
        t = tlp.get_fc_type()
        self.ip_consumed[t][0] += 1
        self.ip_consumed[t][1] += tlp.get_data_credits()
        await super().upstream_send(tlp)

    async def _run_tx_fc_logic(self) -> None:
        edge = RisingEdge(self.coreclkout_hip)
        slots = ((0, FcType.P, False), (1, FcType.NP, False), (2, FcType.CPL, False),
                 (4, FcType.P, True), (5, FcType.NP, True), (6, FcType.CPL, True))
        while True:
            for idx, t, data in slots:
                self.tx_cdts_limit.value = self.app_credit_limit(t, data) & 0xFFFF
                self.tx_cdts_limit_tdm_idx.value = idx
                await edge

    async def upstream_recv(self, tlp: Tlp) -> None:
        self.tlps_down += 1
        if tlp.fmt_type in {TlpType.CFG_READ_0, TlpType.CFG_WRITE_0, TlpType.CFG_READ_1, TlpType.CFG_WRITE_1}:
            self.cfg_requests += 1
        if tlp.fmt_type in {TlpType.CPL, TlpType.CPL_DATA, TlpType.CPL_LOCKED, TlpType.CPL_LOCKED_DATA}:
            await self._recv_completion(tlp)
        elif tlp.fmt_type in {TlpType.MEM_READ, TlpType.MEM_READ_64, TlpType.MEM_WRITE, TlpType.MEM_WRITE_64}:
            await self._recv_memory(tlp)
        else:  # config (the functions, CII above), IO, and the rest: the released model
            await super().upstream_recv(tlp)

    async def _recv_completion(self, tlp: Tlp) -> None:
        func = next((f for f in self.functions if f.pcie_id == tlp.requester_id), None)
        if func is None:
            tlp.release_fc()
            self.log.warning("Unexpected completion: no function for requester ID: %r", tlp)
            return
        frame = frame_from_tlp(tlp)
        frame.func_num = tlp.requester_id.function
        credits = tlp.get_data_credits()
        if (self.rx_buf_cplh_fc_count + 1 <= self.rx_buf_cplh_fc_limit
                and self.rx_buf_cpld_fc_count + credits <= self.rx_buf_cpld_fc_limit):
            self.rx_buf_cplh_fc_count += 1
            self.rx_buf_cpld_fc_count += credits
            await self.rx_queue.put((tlp, frame))
        else:  # the application reserved too little: the real IP's buffer overflows the same way
            self.log.warning("RX completion buffer full, completion dropped: CplH %d/%d CplD %d/%d",
                             self.rx_buf_cplh_fc_count, self.rx_buf_cplh_fc_limit,
                             self.rx_buf_cpld_fc_count, self.rx_buf_cpld_fc_limit)
        tlp.release_fc()

    async def _recv_memory(self, tlp: Tlp) -> None:
        for f in self.functions:
            bar = f.match_bar(tlp.address)
            if bar:
                frame = frame_from_tlp(tlp)
                frame.bar_range = bar[0]
                frame.func_num = f.function_num
                await self.rx_queue.put((tlp, frame))
                tlp.release_fc()
                return
        tlp.release_fc()
        if tlp.fmt_type in {TlpType.MEM_WRITE, TlpType.MEM_WRITE_64}:
            self.log.warning("No BAR match: memory write dropped: %r", tlp)
            return
        self.log.warning("No BAR match: memory read answered with UR: %r", tlp)
        await self.upstream_send(Tlp.create_ur_completion_for_tlp(tlp, PcieId(self.bus_num, 0, 0)))

    # -- tl_cfg: the released table plus PASID at index 0x18 ------------------------------------
    async def tl_cfg_words(self, func: PTileExtFunction) -> list[int]:
        """The 32 tl_cfg_ctl words of one function, index = tl_cfg_add."""
        pc, msi, msix, aer = func.pcie_cap, func.msi_cap, func.msix_cap, func.aer_ext_cap
        w = [0] * 32
        w[0x00] = (func.memory_space_enable << 15 | pc.ido_completion_enable << 14
                   | func.parity_error_response_enable << 13 | func.serr_enable << 12
                   | pc.fatal_error_reporting_enable << 11 | pc.non_fatal_error_reporting_enable << 10
                   | pc.correctable_error_reporting_enable << 9 | pc.unsupported_request_reporting_enable << 8
                   | func.bus_master_enable << 7 | pc.extended_tag_field_enable << 6
                   | (pc.max_read_request_size & 7) << 3 | (pc.max_payload_size & 7))
        w[0x01] = (pc.ido_request_enable << 15 | pc.enable_no_snoop << 14 | pc.enable_relaxed_ordering << 13
                   | (func.pcie_id.device & 0x1F) << 8 | (func.pcie_id.bus & 0xFF))
        w[0x02] = (func.pm_cap.no_soft_reset << 15 | pc.read_completion_boundary << 14
                   | func.interrupt_disable << 13 | (pc.interrupt_message_number & 0x1F) << 8
                   | pc.power_controller_control << 4 | (pc.attention_indicator_control & 3) << 2
                   | (pc.power_indicator_control & 3))
        w[0x04] = (pc.atomic_op_egress_blocking << 14 | pc.ari_forwarding_enable << 7
                   | pc.atomic_op_requester_enable << 6)
        w[0x05] = (pc.current_link_speed & 0xF) << 12
        for k in range(4):
            w[0x06 + k] = (msi.msi_message_address >> (16 * k)) & 0xFFFF
        w[0x0A] = msi.msi_mask_bits & 0xFFFF
        w[0x0B] = (msi.msi_mask_bits >> 16) & 0xFFFF
        w[0x0C] = (pc.system_error_on_fatal_error_enable << 15 | pc.system_error_on_non_fatal_error_enable << 14
                   | pc.system_error_on_correctable_error_enable << 13
                   | (aer.advanced_error_interrupt_message_number & 0x1F) << 8
                   | msi.msi_extended_message_data_enable << 7 | msix.msix_function_mask << 6
                   | msix.msix_enable << 5 | (msi.msi_multiple_message_enable & 7) << 2
                   | msi.msi_64bit_address_capable << 1 | msi.msi_enable)
        w[0x0D] = msi.msi_message_data & 0xFFFF
        for add, reg in ((0x0E, 2), (0x10, 5), (0x12, 3)):  # AER UE mask, CE mask, UE severity
            val = await aer.read_register(reg)
            w[add], w[add + 1] = val & 0xFFFF, (val >> 16) & 0xFFFF
        pasid = func.pasid_cap
        w[TL_CFG_PASID_ADD] = (pasid.enable << TL_CFG_PASID_EN | pasid.exec_enable << TL_CFG_PASID_EXEC
                               | pasid.priv_enable << TL_CFG_PASID_PRIV)
        w[0x1C] = pc.negotiated_link_width & 0x3F
        w[0x1D] = (msi.msi_message_data >> 16) & 0xFFFF
        return [int(x) & 0xFFFF for x in w]

    async def _run_cfg_out_logic(self) -> None:
        edge = RisingEdge(self.coreclkout_hip)
        while True:
            for func in self.functions:
                words = await self.tl_cfg_words(func)
                self.tl_cfg_func.value = func.pcie_id.function
                for add, val in enumerate(words):
                    self.tl_cfg_add.value = add
                    self.tl_cfg_ctl.value = val
                    await edge
