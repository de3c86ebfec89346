// SPDX-License-Identifier: Apache-2.0
/// ep_dma_pkg: status codes of the shared DMA engine (docs: rtl/dma/README.md).
`resetall
`default_nettype none
package ep_dma_pkg;
  // ---- m_rd_sts_error / m_wr_sts_error ------------------------------------------------------
  localparam logic [3:0] DMA_OK            = 4'd0;  // done, all data moved
  localparam logic [3:0] DMA_ERR_UR        = 4'd1;  // a completion had status UR
  localparam logic [3:0] DMA_ERR_CA        = 4'd2;  // a completion had status CA
  localparam logic [3:0] DMA_ERR_TIMEOUT   = 4'd3;  // completion timeout on a read tag
  localparam logic [3:0] DMA_ERR_POISONED  = 4'd4;  // a completion had EP (poisoned data) set
  localparam logic [3:0] DMA_ERR_MALFORMED = 4'd5;  // completion inconsistent with its request
  localparam logic [3:0] DMA_ERR_BME       = 4'd6;  // Bus Master Enable clear: no TLP was sent
  localparam logic [3:0] DMA_ERR_CPL_OTHER = 4'd7;  // completion status CRS or reserved
  localparam logic [3:0] DMA_ERR_PASID     = 4'd8;  // request with a PASID while PASID Enable is
                                                    // clear: no TLP was sent (never without it)
endpackage
`resetall
