"""The IOTLB observer: a copy kept through ``Caches.observer`` always equals the model's IOTLB.

The fast link's C++ IOTLB mirror is such a copy; if it ever held an entry the model had dropped,
the fast mode would translate where the accurate mode faults (or walks again).
"""

from __future__ import annotations

import random

import pytest

from siov_sim.model.iommu.caches import IotlbEntry, IotlbKey
from siov_sim.sw.iommu import descs

from .env import Env

pytestmark = pytest.mark.model

SIDS = (0x0100, 0x0208)
PASIDS = (1, 2, 7)


class Mirror:
    def __init__(self) -> None:
        self.entries: dict[IotlbKey, tuple[int, int, bool]] = {}
        self.events = 0

    def iotlb_put(self, key: IotlbKey, entry: IotlbEntry) -> None:
        self.entries[key] = (entry.out_base, entry.off_mask, entry.write_ok, entry.read_ok)
        self.events += 1

    def iotlb_drop(self, key: IotlbKey) -> None:
        del self.entries[key]  # KeyError here = the observer was told of a drop it never saw put
        self.events += 1

    def iotlb_clear(self) -> None:
        self.entries.clear()
        self.events += 1


def _same(env: Env, mirror: Mirror) -> bool:
    caches = env.iommu.caches
    model = {k: (e.out_base, e.off_mask, e.write_ok, e.read_ok) for k, e in caches.iotlb.items()}
    by_did: dict[int, set[IotlbKey]] = {}
    for k, e in caches.iotlb.items():
        by_did.setdefault(e.did, set()).add(k)
    index = {did: set(keys) for did, keys in caches._by_did.items()}  # the per-domain index agrees too
    return model == mirror.entries and index == by_did


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mirror_follows_fills_evictions_and_every_invalidation(seed: int) -> None:
    rng = random.Random(seed)
    print(f"seed {seed}")
    env = Env()
    env.iommu.caches.iotlb_capacity = 24  # small: FIFO evictions happen all the time
    mirror = Mirror()
    env.iommu.caches.observer = mirror
    env.enable()
    dids: dict[tuple[int, int], int] = {}
    for sid in SIDS:
        env.context(sid)
        for pasid in PASIDS:
            did = 10 + len(dids) % 3  # domains shared by several PASIDs
            dids[(sid, pasid)] = did
            if pasid == 7:
                pt = env.fs_table()
                pt.map(0x40_0000, env.page(512), 0x20_0000)  # a 2 MiB page, cached fractured
                env.bind_fs(sid, pasid, pt, did=did)
            else:
                pt = env.ss_table()
                pt.map(0x40_0000, env.page(8), 8 * 4096)
                env.bind_ss(sid, pasid, pt, did=did)
    for _ in range(600):
        r = rng.random()
        sid, pasid = rng.choice(SIDS), rng.choice(PASIDS)
        did = dids[(sid, pasid)]
        if r < 0.7:
            addr = 0x40_0000 + rng.randrange(8) * 4096 + rng.randrange(4096)
            env.iommu.translate(sid, pasid, addr, write=rng.random() < 0.5)
        elif r < 0.75:
            env.submit(descs.iotlb_global())
        elif r < 0.82:
            env.submit(descs.iotlb_dsi(did))
        elif r < 0.88:
            env.submit(descs.iotlb_psi(did, 0x40_0000 + rng.randrange(8) * 4096, rng.randrange(3)))
        elif r < 0.94:
            env.submit(descs.piotlb_pasid(did, pasid))
        else:
            env.submit(descs.piotlb_page(did, pasid, 0x40_0000 + rng.randrange(8) * 4096, rng.randrange(2)))
        assert _same(env, mirror)
    assert mirror.events > 100
    env.iommu.reset()
    assert mirror.entries == {} and _same(env, mirror)
