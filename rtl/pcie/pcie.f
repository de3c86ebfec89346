// rtl/pcie: one file per line, relative to this list
ep_cfg_space.sv
ep_tlp_rx.sv
ep_tlp_tx.sv
ep_tx_order.sv
ep_pcie_fe.sv
