// SPDX-License-Identifier: Apache-2.0
/// ep_cfg_space: the endpoint's PCI configuration space (Type 0 header, PCI Express capability v2,
/// Power Management, MSI-X, PASID extended capability, Intel Scalable IOV DVSEC).
/// One DW access per request on the s_cfg port (always ready, read data the next cycle); RO / RW /
/// RW1C / HwInit semantics per field with byte enables; unimplemented space reads 0 and ignores
/// writes. Register map: docs/config-space.md.
`resetall
`default_nettype none
module ep_cfg_space #(
  parameter int unsigned NumAdi         = 4,          /// ADIs = BAR2 portal pages, power of two
  parameter int unsigned Bar0SizeLog2   = 20,         /// BAR0 size = 2**Bar0SizeLog2 bytes
  parameter logic [15:0] VendorId       = 16'h1DEA,
  parameter logic [15:0] DeviceId       = 16'h5105,
  parameter logic [15:0] SubsysVendorId = 16'h1DEA,
  parameter logic [15:0] SubsysId       = 16'h0001,
  parameter logic [7:0]  RevisionId     = 8'h01,
  /// SIOV DVSEC Supported Page Sizes: bit n = 2**(n+12) bytes; default 4 KiB, 16 KiB, 64 KiB
  parameter logic [31:0] SupportedPageSizes = 32'h0000_0015
) (
  input  wire logic        clk,
  input  wire logic        rst,                 // synchronous, active-high

  /// config access from the TLP receiver (sink, always ready): one DW per request
  input  wire logic        s_cfg_valid,
  input  wire logic        s_cfg_write,
  input  wire logic [9:0]  s_cfg_dw,            // DW index = byte offset / 4 (0 .. 1023)
  input  wire logic [31:0] s_cfg_wdata,
  input  wire logic [3:0]  s_cfg_be,
  input  wire logic [15:0] s_cfg_target_id,     // bus/dev/fn from the Cfg0 header: bus/dev
                                                //   captured from every CfgWr0 (fn is 0)
  /// read data of the request accepted in the previous cycle (status: no ready)
  output logic [31:0]      m_cfg_rdata,

  /// error events (single-cycle pulses) that set RW1C status bits
  input  wire logic        ev_ur_np,            // non-posted request completed with UR
  input  wire logic        ev_ur_p,             // posted request dropped as unsupported
  input  wire logic        ev_malformed,        // malformed TLP received
  input  wire logic        ev_poisoned,         // poisoned request received
  input  wire logic        ev_cpl_ur,           // completion with UR status received (requester)
  input  wire logic        ev_cpl_ca,           // completion with CA status received (requester)
  input  wire logic        ev_cpl_poisoned,     // poisoned completion received (requester)
  input  wire logic        ev_sig_ca,           // we sent a completion with CA status
  input  wire logic        ev_cpl_timeout,      // a DMA read's completion timed out (requester)
  input  wire logic        ev_unexp_cpl,        // a completion matched no outstanding request
  input  wire logic        dma_tp,              // level: DMA requests outstanding (DevSta.TP)
  /// header and prefix of the TLP behind the ev_* pulse of this cycle (AER Header / Prefix Log):
  /// ev_ur_np/ev_ur_p/ev_malformed/ev_poisoned -> the request; ev_cpl_poisoned/ev_unexp_cpl ->
  /// the completion; ev_cpl_timeout has none
  input  wire logic [127:0] ev_req_hdr,
  input  wire logic [31:0]  ev_req_prfx,
  input  wire logic [127:0] ev_cpl_hdr,
  /// AER error messages to the Root Complex (source; valid and code held until ready)
  output logic             m_errmsg_valid,
  output logic [7:0]       m_errmsg_code,       // MSG_ERR_COR / _NONFATAL / _FATAL
  input  wire logic        m_errmsg_ready,

  /// Function Level Reset: one-cycle pulse when software writes Initiate FLR (config space itself
  /// is back at its defaults in the next cycle; the rest of the function is reset by ep_pcie_fe)
  output logic             cfg_flr,

  /// configuration state (quasi-static)
  output logic [15:0]      cfg_requester_id,
  output logic             cfg_mem_en,          // Command.Memory Space Enable
  output logic             cfg_bus_master_en,
  output logic [2:0]       cfg_max_payload,
  output logic [2:0]       cfg_max_read_req,
  output logic             cfg_ext_tag_en,
  output logic             cfg_pasid_en,
  output logic             cfg_pasid_exec_en,
  output logic             cfg_pasid_priv_en,
  output logic             cfg_msix_en,
  output logic             cfg_msix_func_mask,
  output logic [4:0]       cfg_sys_page_shift,
  output logic [63:0]      cfg_bar0_addr,       // BAR0 base (bits below the size are 0)
  output logic [63:0]      cfg_bar2_addr,       // BAR2 base (bits below the size are 0)
  output logic [63:0]      cfg_bar2_mask        // BAR2 decode mask: 1 for the base bits
);
  localparam int unsigned AdiLog2 = $clog2(NumAdi);
  if (NumAdi != 2 ** AdiLog2 || NumAdi < 1 || NumAdi > 4096) begin : gen_chk_nadi
    $fatal(1, "NumAdi must be a power of two in 1 .. 4096 (%m)");
  end
  if (Bar0SizeLog2 < 14 || Bar0SizeLog2 > 31) begin : gen_chk_bar0
    $fatal(1, "Bar0SizeLog2 must be 14 .. 31 (MSI-X PBA sits at 0x3000) (%m)");
  end
  if (SupportedPageSizes[0] != 1'b1 || SupportedPageSizes[31:20] != 12'h0) begin : gen_chk_sps
    $fatal(1, "SupportedPageSizes must include 4 KiB and stay below 4 GiB pages (%m)");
  end

  localparam logic [63:0] Bar0Mask = ~((64'd1 << Bar0SizeLog2) - 64'd1);
  // BAR type bits: [0] memory, [2:1] 10b = 64-bit, [3] prefetchable
  localparam logic [3:0] Bar0Type = 4'b0100;  // 64-bit, non-prefetchable: PF control registers
  localparam logic [3:0] Bar2Type = 4'b1100;  // 64-bit, prefetchable: portal pages (see docs)

  // ---- fixed register values ----------------------------------------------------------------
  localparam logic [23:0] ClassCode = 24'h088000;  // base 08 (system peripheral), sub 80 (other)
  // PCIe capability register: version 2, device/port type 0000b (PCI Express Endpoint)
  localparam logic [15:0] PcieCapReg = 16'h0002;
  // DevCap: MPS 512 B (010b), Extended Tag Field, L0s/L1 acceptable latency no limit, RBER,
  // Function Level Reset Capability (28)
  localparam logic [31:0] DevCap = 32'h1000_8FE2;
  // LinkCap: 8 GT/s, x8, no ASPM, ASPM Optionality Compliance, port 0
  localparam logic [31:0] LinkCap = 32'h0040_0083;
  // LinkSta: 8 GT/s, x8, Slot Clock Configuration
  localparam logic [15:0] LinkSta = 16'h1083;
  // DevCap2: Extended Fmt Field Supported (20), End-End TLP Prefix Supported (21),
  // Max End-End TLP Prefixes = 01b (one prefix, bits 23:22)
  localparam logic [31:0] DevCap2 = 32'h0070_0000;
  // LinkCap2: supported speeds 2.5, 5, 8 GT/s
  localparam logic [31:0] LinkCap2 = 32'h0000_000E;
  // PMC: version 3, no D1/D2, no PME
  localparam logic [15:0] PmCap = 16'h0003;
  // PASID capability register: Execute 0, Privileged Mode Supported 1, Max PASID Width 20
  localparam logic [15:0] PasidCap = 16'h1404;

  localparam logic [9:0] DwPcie  = 10'(ep_pcie_pkg::CAP_PCIE_OFF >> 2);
  localparam logic [9:0] DwPm    = 10'(ep_pcie_pkg::CAP_PM_OFF >> 2);
  localparam logic [9:0] DwMsix  = 10'(ep_pcie_pkg::CAP_MSIX_OFF >> 2);
  localparam logic [9:0] DwPasid = 10'(ep_pcie_pkg::ECAP_PASID_OFF >> 2);
  localparam logic [9:0] DwSiov  = 10'(ep_pcie_pkg::ECAP_SIOV_OFF >> 2);
  localparam logic [9:0] DwAer   = 10'(ep_pcie_pkg::ECAP_AER_OFF >> 2);
  // AER: uncorrectable errors this function detects (bit = Uncorrectable Error Status bit):
  // 12 Poisoned TLP Received, 14 Completion Timeout, 15 Completer Abort, 16 Unexpected
  // Completion, 18 Malformed TLP, 20 Unsupported Request
  localparam logic [31:0] AerUeImpl    = 32'h0015_D000;
  localparam logic [31:0] AerUeSevRst  = 32'h0004_0000;  // Malformed fatal, the rest non-fatal
  // correctable: 13 Advisory Non-Fatal Error (masked by default per spec)
  localparam logic [31:0] AerCeImpl    = 32'h0000_2000;
  localparam logic [31:0] AerCeMaskRst = 32'h0000_2000;

  // ---- state ----------------------------------------------------------------------------------
  logic [15:0] rid_q;
  // Command
  logic        cmd_mse_q, cmd_bme_q, cmd_per_q, cmd_serr_q, cmd_intd_q;
  // Status RW1C: Master Data Parity Error, Signaled/Received Target Abort, Received Master
  // Abort, Detected Parity Error
  logic        sta_mdpe_q, sta_sta_q, sta_rta_q, sta_rma_q, sta_dpe_q;
  logic [7:0]  cls_q;          // Cache Line Size (RW, no effect on PCIe)
  logic [7:0]  int_line_q;     // Interrupt Line (RW scratch for software)
  logic [63:0] bar0_q, bar2_q;
  // PCIe capability
  logic [3:0]  devctl_err_q;   // [0] CERE [1] NFERE [2] FERE [3] URRE
  logic        devctl_ro_q, devctl_ete_q, devctl_ns_q;
  logic [2:0]  devctl_mps_q, devctl_mrrs_q;
  logic [3:0]  devsta_q;       // RW1C: [0] CED [1] NFED [2] FED [3] URD
  logic [1:0]  linkctl_aspm_q;
  logic        linkctl_ccc_q, linkctl_es_q;
  logic [3:0]  linkctl2_tls_q;
  // PM
  logic [1:0]  pm_state_q;
  // MSI-X
  logic        msix_en_q, msix_fmask_q;
  // PASID
  logic        pasid_en_q, pasid_priv_q;
  // SIOV DVSEC System Page Size (one-hot)
  logic [31:0] sps_q;
  // AER
  logic [31:0] ue_sta_q, ue_mask_q, ue_sev_q, ce_sta_q, ce_mask_q;
  logic [4:0]  fep_q;           // First Error Pointer
  logic        pfx_present_q;   // TLP Prefix Log Present
  logic [127:0] hlog_q;         // Header Log
  logic [31:0] plog_q;          // TLP Prefix Log
  logic        pend_cor_q, pend_nf_q, pend_fatal_q;  // error messages to send
  logic        msg_valid_q;
  logic [7:0]  msg_code_q;

  // ---- derived ------------------------------------------------------------------------------
  // BAR2 is sized for the largest supported page size (NumAdi pages of it), so a System Page
  // Size write never moves or resizes it: portal page n sits at n * System Page Size inside it.
  // index of the highest supported page size bit = $clog2(bits + 1) - 1
  localparam int unsigned MaxPageShift = 12 + $clog2({12'h0, SupportedPageSizes[19:0]} + 32'd1) - 1;
  localparam logic [63:0] Bar2Mask = ~((64'd1 << (AdiLog2 + MaxPageShift)) - 64'd1);
  logic [4:0]  page_shift;
  logic [63:0] bar2_mask;
  always_comb begin
    page_shift = 5'd12;
    for (int i = 0; i < 20; i++) begin
      if (sps_q[i]) page_shift = 5'(12 + i);
    end
    bar2_mask = Bar2Mask;
  end

  logic [63:0] bar0_rd, bar2_rd;
  assign bar0_rd = (bar0_q & Bar0Mask) | 64'(Bar0Type);
  assign bar2_rd = (bar2_q & bar2_mask) | 64'(Bar2Type);

  logic [15:0] cmd_rd, sta_rd, devctl_rd, devsta_rd, linkctl_rd, pmcsr_rd, msix_ctl_rd, pasid_ctl_rd;
  assign cmd_rd = {5'b0, cmd_intd_q, 1'b0, cmd_serr_q, 1'b0, cmd_per_q, 3'b0, cmd_bme_q, cmd_mse_q,
                   1'b0};
  assign sta_rd = {sta_dpe_q, 1'b0, sta_rma_q, sta_rta_q, sta_sta_q, 2'b00, sta_mdpe_q, 3'b000,
                   1'b1 /* Capabilities List */, 4'b0};
  assign devctl_rd = {1'b0, devctl_mrrs_q, devctl_ns_q, 2'b00, devctl_ete_q, devctl_mps_q,
                      devctl_ro_q, devctl_err_q};
  // DevSta[5] Transactions Pending: the DMA engine has requests without their completions
  assign devsta_rd = {10'b0, dma_tp, 1'b0, devsta_q};
  assign linkctl_rd = {8'b0, linkctl_es_q, linkctl_ccc_q, 4'b0, linkctl_aspm_q};
  assign pmcsr_rd = {12'b0, 1'b1 /* No_Soft_Reset */, 1'b0, pm_state_q};
  assign msix_ctl_rd = {msix_en_q, msix_fmask_q, 3'b0, 11'(ep_pcie_pkg::MSIX_VECTORS - 1)};
  assign pasid_ctl_rd = {13'b0, pasid_priv_q, 1'b0, pasid_en_q};

  // ---- read mux -----------------------------------------------------------------------------
  logic [31:0] rdata;
  always_comb begin
    rdata = 32'h0;
    unique case (s_cfg_dw)
      10'd0:  rdata = {DeviceId, VendorId};
      10'd1:  rdata = {sta_rd, cmd_rd};
      10'd2:  rdata = {ClassCode, RevisionId};
      10'd3:  rdata = {8'h00 /* BIST */, 8'h00 /* header type 0 */, 8'h00, cls_q};
      10'd4:  rdata = bar0_rd[31:0];
      10'd5:  rdata = bar0_rd[63:32];
      10'd6:  rdata = bar2_rd[31:0];
      10'd7:  rdata = bar2_rd[63:32];
      10'd11: rdata = {SubsysId, SubsysVendorId};
      10'd13: rdata = {24'h0, ep_pcie_pkg::CAP_PCIE_OFF};
      10'd15: rdata = {16'h0000, 8'h00 /* Interrupt Pin: none */, int_line_q};
      // PCI Express capability
      DwPcie + 10'd0:  rdata = {PcieCapReg, ep_pcie_pkg::CAP_PM_OFF, 8'h10};
      DwPcie + 10'd1:  rdata = DevCap;
      DwPcie + 10'd2:  rdata = {devsta_rd, devctl_rd};
      DwPcie + 10'd3:  rdata = LinkCap;
      DwPcie + 10'd4:  rdata = {LinkSta, linkctl_rd};
      DwPcie + 10'd9:  rdata = DevCap2;
      DwPcie + 10'd10: rdata = 32'h0;  // DevCtl2/DevSta2: nothing optional implemented
      DwPcie + 10'd11: rdata = LinkCap2;
      DwPcie + 10'd12: rdata = {16'h0000, 12'h000, linkctl2_tls_q};
      // Power Management
      DwPm + 10'd0:    rdata = {PmCap, ep_pcie_pkg::CAP_MSIX_OFF, 8'h01};
      DwPm + 10'd1:    rdata = {16'h0000, pmcsr_rd};
      // MSI-X
      DwMsix + 10'd0:  rdata = {msix_ctl_rd, 8'h00 /* end of list */, 8'h11};
      DwMsix + 10'd1:  rdata = ep_pcie_pkg::MSIX_TABLE_OFF;  // BIR 0
      DwMsix + 10'd2:  rdata = ep_pcie_pkg::MSIX_PBA_OFF;    // BIR 0
      // PASID extended capability
      DwPasid + 10'd0: rdata = {ep_pcie_pkg::ECAP_SIOV_OFF, 4'h1, ep_pcie_pkg::ECAP_ID_PASID};
      DwPasid + 10'd1: rdata = {pasid_ctl_rd, PasidCap};
      // Intel Scalable IOV DVSEC
      DwSiov + 10'd0:  rdata = {ep_pcie_pkg::ECAP_AER_OFF, 4'h1, ep_pcie_pkg::ECAP_ID_DVSEC};
      DwSiov + 10'd1:  rdata = {12'h018, 4'h0, ep_pcie_pkg::DVSEC_VENDOR_INTEL};
      // Flags: Homogeneous; Function Dependency Link: own function number (single function: 0)
      DwSiov + 10'd2:  rdata = {8'h01, 8'h00, ep_pcie_pkg::DVSEC_ID_SIOV};
      DwSiov + 10'd3:  rdata = SupportedPageSizes;
      DwSiov + 10'd4:  rdata = sps_q;
      DwSiov + 10'd5:  rdata = 32'h0000_0001;  // Capabilities: IMS Support
      // Advanced Error Reporting (v2), last in the list
      DwAer + 10'd0:   rdata = {12'h000 /* end */, 4'h2, ep_pcie_pkg::ECAP_ID_AER};
      DwAer + 10'd1:   rdata = ue_sta_q;
      DwAer + 10'd2:   rdata = ue_mask_q;
      DwAer + 10'd3:   rdata = ue_sev_q;
      DwAer + 10'd4:   rdata = ce_sta_q;
      DwAer + 10'd5:   rdata = ce_mask_q;
      // Capabilities and Control: First Error Pointer, TLP Prefix Log Present (11); no ECRC,
      // no multiple header recording
      DwAer + 10'd6:   rdata = {20'h0, pfx_present_q, 6'h0, fep_q};
      DwAer + 10'd7:   rdata = hlog_q[127:96];
      DwAer + 10'd8:   rdata = hlog_q[95:64];
      DwAer + 10'd9:   rdata = hlog_q[63:32];
      DwAer + 10'd10:  rdata = hlog_q[31:0];
      DwAer + 10'd14:  rdata = plog_q;          // TLP Prefix Log (one prefix)
      default: rdata = 32'h0;
    endcase
  end

  always_ff @(posedge clk) begin
    if (s_cfg_valid) m_cfg_rdata <= rdata;
  end

  // ---- writes ---------------------------------------------------------------------------------
  logic [31:0] bm;      // byte mask of the write
  logic [7:0]  w1c_sta;    // Status bits written with 1 (RW1C)
  logic [3:0]  w1c_devsta; // Device Status bits written with 1 (RW1C)
  logic        wr;
  assign bm  = {{8{s_cfg_be[3]}}, {8{s_cfg_be[2]}}, {8{s_cfg_be[1]}}, {8{s_cfg_be[0]}}};
  assign w1c_sta    = s_cfg_wdata[31:24] & {8{s_cfg_be[3]}};
  assign w1c_devsta = s_cfg_wdata[19:16] & {4{s_cfg_be[2]}};
  logic unused_tid;  // function number: this single-function device is always function 0
  assign unused_tid = ^s_cfg_target_id[2:0];
  logic unused_w1c;  // Signaled System Error and the RO status bits have no RW1C storage
  assign unused_w1c = ^{w1c_sta[6], w1c_sta[2:1]};
  assign wr  = s_cfg_valid && s_cfg_write;
  // DevCtl[15] Initiate Function Level Reset: write 1 (reads 0)
  logic flr;
  assign flr = wr && s_cfg_dw == DwPcie + 10'd2 && s_cfg_be[1] && s_cfg_wdata[15];

  // merge helper: new value of the RW bits of a DW
  logic [31:0] wmerge_bar0_lo, wmerge_bar0_hi, wmerge_bar2_lo, wmerge_bar2_hi, wmerge_sps;
  assign wmerge_bar0_lo = (bar0_q[31:0] & ~bm) | (s_cfg_wdata & bm);
  assign wmerge_bar0_hi = (bar0_q[63:32] & ~bm) | (s_cfg_wdata & bm);
  assign wmerge_bar2_lo = (bar2_q[31:0] & ~bm) | (s_cfg_wdata & bm);
  assign wmerge_bar2_hi = (bar2_q[63:32] & ~bm) | (s_cfg_wdata & bm);
  assign wmerge_sps     = (sps_q & ~bm) | (s_cfg_wdata & bm);

  // a System Page Size write is accepted only if exactly one supported bit is set
  logic sps_ok;
  assign sps_ok = (wmerge_sps & ~SupportedPageSizes) == 32'h0 && wmerge_sps != 32'h0
                  && (wmerge_sps & (wmerge_sps - 32'd1)) == 32'h0;

  always_ff @(posedge clk) begin
    // Bus/Device Number of the function, from CfgWr0 only (a CfgRd0 does not set it)
    if (wr) rid_q <= {s_cfg_target_id[15:3], 3'b000};
    // RW1C status: a set event wins over a clear in the same cycle
    if (wr && s_cfg_dw == 10'd1) begin
      if (w1c_sta[0]) sta_mdpe_q <= 1'b0;
      if (w1c_sta[3]) sta_sta_q  <= 1'b0;
      if (w1c_sta[4]) sta_rta_q  <= 1'b0;
      if (w1c_sta[5]) sta_rma_q  <= 1'b0;
      if (w1c_sta[7]) sta_dpe_q  <= 1'b0;
    end
    if (wr && s_cfg_dw == DwPcie + 10'd2) devsta_q <= devsta_q & ~w1c_devsta;
    if (ev_cpl_poisoned && cmd_per_q) sta_mdpe_q <= 1'b1;
    if (ev_sig_ca) sta_sta_q <= 1'b1;
    if (ev_cpl_ca) sta_rta_q <= 1'b1;
    if (ev_cpl_ur) sta_rma_q <= 1'b1;
    if (ev_poisoned || ev_cpl_poisoned) sta_dpe_q <= 1'b1;
    // Device Status: with Role-Based Error Reporting a UR'd non-posted request is an advisory
    // non-fatal error (logged as correctable), a posted one is non-fatal; malformed is fatal.
    // Completion Timeout: uncorrectable non-fatal; Unexpected Completion: advisory non-fatal
    // (logged as correctable, RBER)
    if (ev_ur_np || ev_unexp_cpl) devsta_q[0] <= 1'b1;
    if (ev_cpl_timeout) devsta_q[1] <= 1'b1;
    if (ev_ur_p || ev_poisoned) devsta_q[1] <= 1'b1;
    if (ev_malformed) devsta_q[2] <= 1'b1;
    if (ev_ur_np || ev_ur_p) devsta_q[3] <= 1'b1;

    if (wr) begin
      unique case (s_cfg_dw)
        10'd1: begin
          if (s_cfg_be[0]) begin
            cmd_mse_q <= s_cfg_wdata[1];
            cmd_bme_q <= s_cfg_wdata[2];
            cmd_per_q <= s_cfg_wdata[6];
          end
          if (s_cfg_be[1]) begin
            cmd_serr_q <= s_cfg_wdata[8];
            cmd_intd_q <= s_cfg_wdata[10];
          end
        end
        10'd3:  if (s_cfg_be[0]) cls_q <= s_cfg_wdata[7:0];
        10'd4:  bar0_q[31:0]  <= wmerge_bar0_lo & Bar0Mask[31:0];
        10'd5:  bar0_q[63:32] <= wmerge_bar0_hi & Bar0Mask[63:32];
        10'd6:  bar2_q[31:0]  <= wmerge_bar2_lo & 32'hFFFF_F000;
        10'd7:  bar2_q[63:32] <= wmerge_bar2_hi;
        10'd15: if (s_cfg_be[0]) int_line_q <= s_cfg_wdata[7:0];
        DwPcie + 10'd2: begin
          if (s_cfg_be[0]) begin
            devctl_err_q <= s_cfg_wdata[3:0];
            devctl_ro_q  <= s_cfg_wdata[4];
            devctl_mps_q <= s_cfg_wdata[7:5];
          end
          if (s_cfg_be[1]) begin
            devctl_ete_q  <= s_cfg_wdata[8];
            devctl_ns_q   <= s_cfg_wdata[11];
            devctl_mrrs_q <= s_cfg_wdata[14:12];
          end
        end
        DwPcie + 10'd4: begin
          if (s_cfg_be[0]) begin
            linkctl_aspm_q <= s_cfg_wdata[1:0];
            linkctl_ccc_q  <= s_cfg_wdata[6];
            linkctl_es_q   <= s_cfg_wdata[7];
          end
        end
        DwPcie + 10'd12: if (s_cfg_be[0]) linkctl2_tls_q <= s_cfg_wdata[3:0];
        DwPm + 10'd1: begin
          // only D0 and D3hot exist; writes of D1/D2 are ignored (state kept)
          if (s_cfg_be[0] && (s_cfg_wdata[1:0] == 2'b00 || s_cfg_wdata[1:0] == 2'b11)) begin
            pm_state_q <= s_cfg_wdata[1:0];
          end
        end
        DwMsix + 10'd0: begin
          if (s_cfg_be[3]) begin
            msix_fmask_q <= s_cfg_wdata[30];
            msix_en_q    <= s_cfg_wdata[31];
          end
        end
        DwPasid + 10'd1: begin
          if (s_cfg_be[2]) begin
            pasid_en_q   <= s_cfg_wdata[16];
            pasid_priv_q <= s_cfg_wdata[18];
          end
        end
        DwSiov + 10'd4: if (sps_ok) sps_q <= wmerge_sps;
        default: ;
      endcase
    end

    if (rst) rid_q <= 16'h0;
    // reset and FLR: everything but the captured Bus/Device Number back to its default
    if (rst || flr) begin
      {cmd_mse_q, cmd_bme_q, cmd_per_q, cmd_serr_q, cmd_intd_q} <= '0;
      {sta_mdpe_q, sta_sta_q, sta_rta_q, sta_rma_q, sta_dpe_q} <= '0;
      cls_q <= 8'h0;
      int_line_q <= 8'h0;
      bar0_q <= 64'h0;
      bar2_q <= 64'h0;
      devctl_err_q <= 4'h0;
      devctl_ro_q <= 1'b1;       // Enable Relaxed Ordering: default 1
      devctl_mps_q <= 3'b000;    // 128 bytes
      devctl_ete_q <= 1'b0;
      devctl_ns_q <= 1'b1;       // Enable No Snoop: default 1
      devctl_mrrs_q <= 3'b010;   // 512 bytes
      devsta_q <= 4'h0;
      linkctl_aspm_q <= 2'b00;
      linkctl_ccc_q <= 1'b0;
      linkctl_es_q <= 1'b0;
      linkctl2_tls_q <= 4'h3;    // Target Link Speed = 8 GT/s
      pm_state_q <= 2'b00;
      msix_en_q <= 1'b0;
      msix_fmask_q <= 1'b0;
      pasid_en_q <= 1'b0;
      pasid_priv_q <= 1'b0;
      sps_q <= 32'h1;            // 4 KiB
    end
  end

  // ---- AER: logging and error messages ----------------------------------------------------------
  // Status bits are set whether masked or not; an unmasked error updates the First Error Pointer
  // and the Header/Prefix Log if no logged error is pending (FEP's status bit clear) and is
  // reported by message. Advisory Non-Fatal cases (RBER; their severity non-fatal): a UR
  // completion sent for a non-posted request, an unexpected completion, a poisoned completion to
  // our own read (the ADI halts) -> Correctable ANFE + ERR_COR. UR is reported only with DevCtl
  // URRE. ERR_COR needs DevCtl CERE, ERR_NONFATAL NFERE or SERR# Enable, ERR_FATAL FERE or SERR#.
  logic [31:0]  ue_ev, adv_bits, log_bits, rep_mask;
  logic [4:0]   log_sel;
  logic [127:0] log_hdr;
  logic [31:0]  log_prfx;
  logic         send_cor, send_nf, send_fatal;
  always_comb begin
    ue_ev = '0;
    ue_ev[12] = ev_poisoned || ev_cpl_poisoned;
    ue_ev[14] = ev_cpl_timeout;
    ue_ev[15] = ev_sig_ca;
    ue_ev[16] = ev_unexp_cpl;
    ue_ev[18] = ev_malformed;
    ue_ev[20] = ev_ur_np || ev_ur_p;
    adv_bits = '0;
    adv_bits[12] = ev_cpl_poisoned && !ev_poisoned && !ue_sev_q[12];
    adv_bits[16] = ev_unexp_cpl && !ue_sev_q[16];
    adv_bits[20] = ev_ur_np && !ue_sev_q[20];
    log_bits = ue_ev & ~ue_mask_q;
    rep_mask = devctl_err_q[3] ? 32'hFFFF_FFFF : ~(32'd1 << 20);
    send_cor   = |(adv_bits & log_bits & rep_mask) && !ce_mask_q[13] && devctl_err_q[0];
    send_nf    = |(ue_ev & ~adv_bits & log_bits & rep_mask & ~ue_sev_q) && (devctl_err_q[1] || cmd_serr_q);
    send_fatal = |(ue_ev & ~adv_bits & log_bits & rep_mask & ue_sev_q) && (devctl_err_q[2] || cmd_serr_q);
    // the error logged first in this cycle (priority malformed, UR, poisoned, UC, CTO, CA)
    log_sel  = 5'd15;
    log_hdr  = '0;
    log_prfx = '0;
    if (log_bits[18])      begin log_sel = 5'd18; log_hdr = ev_req_hdr; log_prfx = ev_req_prfx; end
    else if (log_bits[20]) begin log_sel = 5'd20; log_hdr = ev_req_hdr; log_prfx = ev_req_prfx; end
    else if (log_bits[12]) begin
      log_sel = 5'd12;
      log_hdr = ev_poisoned ? ev_req_hdr : ev_cpl_hdr;
      log_prfx = ev_poisoned ? ev_req_prfx : 32'h0;
    end
    else if (log_bits[16]) begin log_sel = 5'd16; log_hdr = ev_cpl_hdr; end
    else if (log_bits[14]) begin log_sel = 5'd14; end
  end

  always_ff @(posedge clk) begin
    if (wr && s_cfg_dw == DwAer + 10'd1) ue_sta_q <= ue_sta_q & ~(s_cfg_wdata & bm);
    if (wr && s_cfg_dw == DwAer + 10'd2) ue_mask_q <= ((ue_mask_q & ~bm) | (s_cfg_wdata & bm)) & AerUeImpl;
    if (wr && s_cfg_dw == DwAer + 10'd3) ue_sev_q <= ((ue_sev_q & ~bm) | (s_cfg_wdata & bm)) & AerUeImpl;
    if (wr && s_cfg_dw == DwAer + 10'd4) ce_sta_q <= ce_sta_q & ~(s_cfg_wdata & bm);
    if (wr && s_cfg_dw == DwAer + 10'd5) ce_mask_q <= ((ce_mask_q & ~bm) | (s_cfg_wdata & bm)) & AerCeImpl;
    // a new error wins over a clear in the same cycle
    for (int i = 0; i < 32; i++) if (ue_ev[i]) ue_sta_q[i] <= 1'b1;
    if (|adv_bits) ce_sta_q[13] <= 1'b1;
    if (|log_bits && !ue_sta_q[fep_q]) begin
      fep_q         <= log_sel;
      hlog_q        <= log_hdr;
      plog_q        <= log_prfx;
      pfx_present_q <= log_prfx != 32'h0;
    end
    // error messages: one pending flag per kind; the presented one is held until taken
    if (send_cor) pend_cor_q <= 1'b1;
    if (send_nf) pend_nf_q <= 1'b1;
    if (send_fatal) pend_fatal_q <= 1'b1;
    if (msg_valid_q && m_errmsg_ready) msg_valid_q <= 1'b0;
    if (!msg_valid_q) begin
      if (pend_fatal_q) begin
        msg_valid_q <= 1'b1;  msg_code_q <= ep_pcie_pkg::MSG_ERR_FATAL;  pend_fatal_q <= send_fatal;
      end else if (pend_nf_q) begin
        msg_valid_q <= 1'b1;  msg_code_q <= ep_pcie_pkg::MSG_ERR_NONFATAL;  pend_nf_q <= send_nf;
      end else if (pend_cor_q) begin
        msg_valid_q <= 1'b1;  msg_code_q <= ep_pcie_pkg::MSG_ERR_COR;  pend_cor_q <= send_cor;
      end
    end
    // AER registers are sticky: a Function Level Reset leaves them alone
    if (rst) begin
      ue_sta_q <= '0;  ue_mask_q <= '0;  ue_sev_q <= AerUeSevRst;
      ce_sta_q <= '0;  ce_mask_q <= AerCeMaskRst;
      fep_q <= 5'd0;  pfx_present_q <= 1'b0;  hlog_q <= '0;  plog_q <= '0;
      pend_cor_q <= 1'b0;  pend_nf_q <= 1'b0;  pend_fatal_q <= 1'b0;
      msg_valid_q <= 1'b0;  msg_code_q <= 8'h0;
    end
  end
  assign m_errmsg_valid = msg_valid_q;
  assign m_errmsg_code  = msg_code_q;

`ifndef SYNTHESIS
  logic       chk_msg_hold_q;
  logic [7:0] chk_msg_code_q;
  always_ff @(posedge clk) begin
    chk_msg_hold_q <= !rst && msg_valid_q && !m_errmsg_ready;
    chk_msg_code_q <= msg_code_q;
    if (!rst && chk_msg_hold_q && !(msg_valid_q && msg_code_q == chk_msg_code_q))
      $error("ep_cfg_space: error message dropped or changed before ready (%m)");
  end
`endif

  // ---- outputs --------------------------------------------------------------------------------
  assign cfg_requester_id   = rid_q;
  assign cfg_flr            = flr;
  // in D3hot a function answers config requests only and initiates nothing
  assign cfg_mem_en         = cmd_mse_q && pm_state_q == 2'b00;
`ifdef MUTANT_BME_IGNORED  // planted bug (make mutants): Bus Master Enable never reaches the requesters
  assign cfg_bus_master_en  = pm_state_q == 2'b00;
  wire unused_mutant_bme = cmd_bme_q;
`else
  assign cfg_bus_master_en  = cmd_bme_q && pm_state_q == 2'b00;
`endif
  assign cfg_max_payload    = devctl_mps_q;
  assign cfg_max_read_req   = devctl_mrrs_q;
  assign cfg_ext_tag_en     = devctl_ete_q;
  assign cfg_pasid_en       = pasid_en_q;
  assign cfg_pasid_exec_en  = 1'b0;  // Execute Permission not supported
  assign cfg_pasid_priv_en  = pasid_priv_q;
  assign cfg_msix_en        = msix_en_q;
  assign cfg_msix_func_mask = msix_fmask_q;
  assign cfg_sys_page_shift = page_shift;
  assign cfg_bar0_addr      = bar0_q & Bar0Mask;
  assign cfg_bar2_addr      = bar2_q & bar2_mask;
  assign cfg_bar2_mask      = bar2_mask;
endmodule
`resetall
