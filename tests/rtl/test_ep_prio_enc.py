"""ep_prio_enc: lowest set index of req (tree form), against Python, exhaustive for small widths."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.triggers import Timer

from siov_sim.tb.runner import run_rtl


def expected(req: int) -> tuple[int, int]:
    if req == 0:
        return 0, 0
    return 1, (req & -req).bit_length() - 1


@cocotb.test()
async def lowest_set_index(dut) -> None:
    width = len(dut.req)
    rng = random.Random(cocotb.RANDOM_SEED)
    if width <= 10:
        values = list(range(1 << width))
    else:
        values = [0, (1 << width) - 1, 1 << (width - 1)] + [1 << i for i in range(width)]
        # sparse vectors exercise every position as the lowest hit with higher bits set
        values += [rng.getrandbits(width) & ~((1 << rng.randrange(width)) - 1) for _ in range(3000)]
    for v in values:
        dut.req.value = v
        await Timer(1, unit="ns")
        got = (int(dut.any.value), dut.idx.value.to_unsigned())
        assert got == expected(v), f"req={v:#x}: got any,idx={got}, want {expected(v)}"


@pytest.mark.rtl
@pytest.mark.parametrize("width", [1, 5, 8, 16, 64])
def test_ep_prio_enc(width: int) -> None:
    run_rtl("ep_prio_enc", parameters={"Width": width}, test_module=__name__)
