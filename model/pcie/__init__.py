"""PCIe wire-format helpers (pure Python)."""
