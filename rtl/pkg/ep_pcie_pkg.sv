// SPDX-License-Identifier: Apache-2.0
/// ep_pcie_pkg: PCIe TLP header field codes and config-space layout constants of the endpoint
/// (docs: rtl/pcie/README.md, docs/config-space.md). Constants only, so Yosys and Verilator agree.
`resetall
`default_nettype none
package ep_pcie_pkg;

  // ---- TLP DW0 Fmt[2:0] -------------------------------------------------------------------
  localparam logic [2:0] FMT_3DW      = 3'b000;
  localparam logic [2:0] FMT_4DW      = 3'b001;
  localparam logic [2:0] FMT_3DW_DATA = 3'b010;
  localparam logic [2:0] FMT_4DW_DATA = 3'b011;
  localparam logic [2:0] FMT_PREFIX   = 3'b100;

  // ---- TLP DW0 Type[4:0] ------------------------------------------------------------------
  localparam logic [4:0] TYPE_MEM      = 5'b00000;  // MRd (no data) / MWr (data)
  localparam logic [4:0] TYPE_MEM_LK   = 5'b00001;  // MRdLk
  localparam logic [4:0] TYPE_IO       = 5'b00010;  // IORd / IOWr
  localparam logic [4:0] TYPE_CFG0     = 5'b00100;  // CfgRd0 / CfgWr0
  localparam logic [4:0] TYPE_CFG1     = 5'b00101;  // CfgRd1 / CfgWr1
  localparam logic [4:0] TYPE_CPL      = 5'b01010;  // Cpl / CplD
  localparam logic [4:0] TYPE_CPL_LK   = 5'b01011;  // CplLk / CplDLk
  localparam logic [4:0] TYPE_FETCHADD = 5'b01100;  // AtomicOp FetchAdd
  localparam logic [4:0] TYPE_SWAP     = 5'b01101;  // AtomicOp Swap
  localparam logic [4:0] TYPE_CAS      = 5'b01110;  // AtomicOp CAS
  localparam logic [1:0] TYPE_MSG_HI   = 2'b10;     // Msg / MsgD: Type = 10rrr
  localparam logic [7:0] MSG_VDM_TYPE0 = 8'h7E;     // Vendor_Defined Type 0 message code
  localparam logic [7:0] MSG_VDM_TYPE1 = 8'h7F;     // Vendor_Defined Type 1 message code

  // ---- Completion status ------------------------------------------------------------------
  // Max_Payload_Size Supported (DevCap[2:0]): 512 bytes. DevCtl.MPS codes above it act as it
  // everywhere (ep_tlp_tx completions, ep_dma_wr MWr), so the whole function honours one MPS.
  localparam logic [2:0] MPS_SUPPORTED = 3'b010;

  localparam logic [2:0] CPL_SC  = 3'b000;
  localparam logic [2:0] CPL_UR  = 3'b001;
  localparam logic [2:0] CPL_CRS = 3'b010;
  localparam logic [2:0] CPL_CA  = 3'b100;

  // ---- End-End TLP prefix (sideband DW) -----------------------------------------------------
  localparam logic [7:0] PRFX_PASID = 8'h91;        // Fmt 100b, Type 1_0001b

  // ---- Header bit positions in hdr[127:0] (DW0 in [127:96]) ---------------------------------
  localparam int unsigned HDR_FMT_LSB    = 125;  // [127:125]
  localparam int unsigned HDR_TYPE_LSB   = 120;  // [124:120]
  localparam int unsigned HDR_T9         = 119;
  localparam int unsigned HDR_TC_LSB     = 116;  // [118:116]
  localparam int unsigned HDR_T8         = 115;
  localparam int unsigned HDR_ATTR2      = 114;
  localparam int unsigned HDR_TD         = 111;
  localparam int unsigned HDR_EP         = 110;
  localparam int unsigned HDR_ATTR_LSB   = 108;  // [109:108]
  localparam int unsigned HDR_LEN_LSB    = 96;   // [105:96]
  localparam int unsigned HDR_RID_LSB    = 80;   // [95:80]  requester ID (requests)
  localparam int unsigned HDR_TAG_LSB    = 72;   // [79:72]
  localparam int unsigned HDR_LBE_LSB    = 68;   // [71:68]
  localparam int unsigned HDR_FBE_LSB    = 64;   // [67:64]
  localparam int unsigned HDR_CPL_STATUS_LSB = 77;  // [79:77] completion status
  localparam int unsigned HDR_CFG_TID_LSB    = 48;  // [63:48] config target bus/dev/fn
  localparam int unsigned HDR_CFG_REG_LSB    = 34;  // [43:34] {ext reg, reg} = DW index

  // ---- Config space layout (byte offsets) ---------------------------------------------------
  localparam logic [7:0]  CAP_PCIE_OFF  = 8'h40;   // PCI Express capability v2 (0x3C bytes)
  localparam logic [7:0]  CAP_PM_OFF    = 8'h80;   // Power Management capability
  localparam logic [7:0]  CAP_MSIX_OFF  = 8'h90;   // MSI-X capability
  localparam logic [11:0] ECAP_PASID_OFF = 12'h100; // PASID extended capability
  localparam logic [11:0] ECAP_SIOV_OFF  = 12'h110; // Intel Scalable IOV DVSEC
  localparam logic [11:0] ECAP_AER_OFF   = 12'h140; // Advanced Error Reporting (v2, 0x48 bytes)
  localparam logic [15:0] ECAP_ID_AER   = 16'h0001;
  // error messages (Msg, routed to the Root Complex) and their codes
  localparam logic [4:0] TYPE_MSG_TO_RC = 5'b10000;
  localparam logic [7:0] MSG_ERR_COR      = 8'h30;
  localparam logic [7:0] MSG_ERR_NONFATAL = 8'h31;
  localparam logic [7:0] MSG_ERR_FATAL    = 8'h33;

  localparam logic [15:0] ECAP_ID_PASID = 16'h001B;
  localparam logic [15:0] ECAP_ID_DVSEC = 16'h0023;
  localparam logic [15:0] DVSEC_VENDOR_INTEL = 16'h8086;
  localparam logic [15:0] DVSEC_ID_SIOV      = 16'h0005;

  // MSI-X table / PBA in BAR0 (storage is in ep_core)
  localparam int unsigned MSIX_VECTORS   = 8;
  localparam logic [31:0] MSIX_TABLE_OFF = 32'h0000_2000;
  localparam logic [31:0] MSIX_PBA_OFF   = 32'h0000_3000;

  localparam int unsigned MAX_PAYLOAD_DW = 128;     // DevCap MPS Supported = 512 bytes
endpackage
`resetall
