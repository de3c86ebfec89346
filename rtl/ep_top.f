// siov-sim endpoint: every synthesizable RTL file, packages first (paths relative to this file).
// Each area keeps its own list; Verilator (-F), Yosys (tb/lint.py) and tb/runner.py expand them.
-F pkg/pkg.f
-F prim/prim.f
-F pcie/pcie.f
-F dma/dma.f
-F adi/adi.f
-F gen/gen.f
-F core/core.f
-F hip/hip.f
ep_top.sv
