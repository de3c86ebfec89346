"""Live migration between two fake hosts (VT-d model + ADI golden model each): the VMM's
migration driver (sw/vmm), the VDEV's VFIO migration v2 arcs and the VDCM state stream."""

from __future__ import annotations

import asyncio
import errno
import os
from random import Random

import pytest

from siov_sim.sw.driver.abi import AdiState
from siov_sim.sw.vmm import CheckedTraffic, Host, MigrationError, migrate, start_guest, stop_guest

from .stack import Stack, build, run

pytestmark = pytest.mark.sw


async def two_hosts(num_adis: int = 8) -> tuple[Host, Host, Stack, Stack]:
    a, b = await build(num_adis), await build(num_adis)
    b.host.runtime = a.host.runtime  # one clock for both hosts (one simulation)
    return Host("A", a.host, a.pf, a.vdcm), Host("B", b.host, b.pf, b.vdcm), a, b


def test_migrate_back_and_forth_under_traffic() -> None:
    seed = int(os.environ.get("SIOV_MIGRATE_SEED", "1"))
    print(f"seed {seed}")
    rng = Random(seed)

    async def main() -> None:
        ha, hb, sa, sb = await two_hosts()
        g = await start_guest(ha, "vm0", "siov-4q", ram_size=0x14_0000)
        t = CheckedTraffic(g, rng)
        await t.setup()
        tasks = [asyncio.ensure_future(t.run(q)) for q in range(len(g.driver.queues))]
        hosts = [ha, hb]
        for i in range(100):
            await sa.host.runtime.sleep(rng.uniform(0, 20_000))  # a random migration point
            await migrate(g, hosts[(i + 1) % 2], threshold_pages=rng.choice([0, 4, 16]))
            assert not t.stats.errors, t.stats.errors
        t.stop = True
        await asyncio.gather(*tasks)
        assert not t.stats.errors, t.stats.errors
        assert t.stats.completed == t.stats.posted > 200
        assert await t.device_completed() == t.stats.posted  # nothing executed twice or lost
        assert t.irqs() > 0
        assert set(t.stats.per_host) == {"A", "B"}
        await stop_guest(g)
        for s in (sa, sb):
            u = s.vdcm.usage()
            assert (u.vdevs, u.adis_in_use, u.pasids_in_use) == (0, 0, 0)

    run(main())
