"""`make cfgdump`: the whole 4 KiB config space of the simulated RTL, in ``lspci -xxxx`` format.

Runs ep_top under Verilator, lets cocotbext-pcie's root complex enumerate it (BARs assigned,
bus mastering and MSI-X enabled the way a driver's probe would), then reads all 1024 dwords with
CfgRd0 TLPs that the RTL answers and writes them as ``lspci -xxxx`` text. Feed the file to the
real decoder: ``lspci -F build/cfgdump.txt -vvv``.

``--hip ptile`` (``make cfgdump HIP=ptile``): ep_ptile_top behind the extended Intel P-tile model
instead; the IP answers most of config space and the SIOV DVSEC at 0xD00 comes from the RTL
through the Configuration Intercept Interface.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import cocotb

from siov_sim.model.pcie.cfgdump import CONFIG_SPACE_SIZE, format_lspci

log = logging.getLogger(__name__)


async def read_config_space(dev: object, length: int = CONFIG_SPACE_SIZE) -> bytes:
    """The first ``length`` bytes (all 4096 by default), one CfgRd0 per dword; the rest reads 0."""
    out = bytearray()
    for off in range(0, length, 4):
        out += (await dev.config_read_dword(off)).to_bytes(4, "little")  # type: ignore[attr-defined]
    return bytes(out.ljust(CONFIG_SPACE_SIZE, b"\0"))


async def enumerate_and_dump(dut: object) -> tuple[str, bytes]:
    from siov_sim.tb.env import Env

    env = Env(dut)
    dev = await env.start()
    assert dev is not None
    await dev.enable_device()
    await dev.set_master()
    await dev.alloc_irq_vectors(1, 8)
    data = await read_config_space(dev)
    env.check_link_clean()
    return f"{dev.bus_num:02x}:{dev.device_num:02x}.{dev.function_num:x}", data


@cocotb.test()
async def dump_config_space(dut: object) -> None:
    bdf, data = await enumerate_and_dump(dut)
    cls = int.from_bytes(data[0x0A:0x0C], "little")
    vid, did = int.from_bytes(data[0:2], "little"), int.from_bytes(data[2:4], "little")
    text = format_lspci(data, bdf, f"Class {cls:04x}: Device {vid:04x}:{did:04x}")
    out = Path(os.environ.get("SIOV_CFGDUMP_OUT", "cfgdump.txt"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    log.info("config space of %s written to %s", bdf, out)


def run(out: Path, parameters: dict[str, object] | None = None, hip: str = "none") -> Path:
    from siov_sim.tb.runner import run_rtl

    env = {"SIOV_CFGDUMP_OUT": str(out.resolve())}
    if hip == "ptile":
        env["SIOV_NUM_ADI"] = str((parameters or {}).get("NumAdi", 4))
    run_rtl("ep_ptile_top" if hip == "ptile" else "ep_top", test_module="siov_sim.tb.cfgdump",
            testcase="dump_config_space", parameters=parameters, extra_env=env)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("build/cfgdump.txt"))
    ap.add_argument("--num-adi", type=int, default=None, help="ep_top NumAdi parameter")
    ap.add_argument("--hip", choices=("none", "ptile"), default="none",
                    help="ptile: ep_ptile_top behind the Intel P-tile model (DVSEC through CII)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = {"NumAdi": args.num_adi} if args.num_adi else None
    run(args.out, params, args.hip)
    return 0


if __name__ == "__main__":
    sys.exit(main())
