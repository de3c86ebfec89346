"""Property tests: random mappings built by the driver's page-table builder vs a flat reference map.

For each translation type and page size, the model's translation of every mapped page (and of
unmapped neighbours) must equal the reference; after random map/unmap sequences with the driver's
invalidations, no stale translation survives.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siov_sim.model.iommu import Fault, Translation
from siov_sim.sw.iommu import Domain, DomainKind, IommuDriver

from ...model.iommu.env import run
from .fakebus import FakeBus

pytestmark = pytest.mark.sw

SID = 0x0A08
GIB = 1 << 30
HPA_BASE = 1 << 36  # data "pages" are never touched, only translated: no RAM needed
GPA_WIN = 1 << 32  # nested: FS outputs GPAs in [4 GiB, 4 GiB + 64 GiB), SS maps them at +2^40
SS_OFF = 1 << 40
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Region:
    slot: int  # 1 GiB slot of the input space
    shift: int  # page size
    pages: int
    write: bool
    user: bool


regions_st = st.lists(
    st.builds(
        Region,
        slot=st.integers(0, 63),
        shift=st.sampled_from([12, 21, 30]),
        pages=st.integers(1, 3),
        write=st.booleans(),
        user=st.booleans(),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda r: r.slot,
)


class World:
    def __init__(self, kind: DomainKind, levels: int | None) -> None:
        self.bus = FakeBus()
        self.drv = IommuDriver(self.bus)
        run(self.drv.bring_up())
        self.kind = kind
        self.parent: Domain | None = None
        if kind is DomainKind.NESTED:
            self.parent = self.drv.alloc_domain(DomainKind.SECOND_STAGE)
            self.parent.map(GPA_WIN, GPA_WIN + SS_OFF, 64 * GIB)  # 1 GiB SS pages
            self.dom = self.drv.alloc_domain(DomainKind.NESTED, parent=self.parent, levels=levels)
        else:
            self.dom = self.drv.alloc_domain(kind, levels=levels)
        run(self.drv.bind_pasid(SID, 5, self.dom))
        self.ref: dict[int, tuple[int, int, bool, bool]] = {}  # va -> (size, final out, write, user)

    def va(self, r: Region) -> int:
        base = r.slot * GIB + (0x7F00_0000_0000 if self.kind is not DomainKind.SECOND_STAGE else 0)
        return base

    def out(self, r: Region) -> int:
        return (GPA_WIN if self.kind is DomainKind.NESTED else HPA_BASE) + r.slot * GIB

    def map(self, r: Region) -> None:
        size = r.pages << r.shift if r.shift < 30 else GIB
        self.dom.map(self.va(r), self.out(r), size, write=r.write, user=r.user)
        final = self.out(r) + (SS_OFF if self.kind is DomainKind.NESTED else 0)
        self.ref[self.va(r)] = (size, final, r.write, r.user)

    def expect(self, addr: int) -> tuple[int, bool, bool] | None:
        for va, (size, out, write, user) in self.ref.items():
            if va <= addr < va + size:
                return out + addr - va, write, user
        return None

    def unmap(self, r: Region) -> None:
        size = r.pages << r.shift if r.shift < 30 else GIB
        run(self.dom.unmap(self.va(r), size))
        del self.ref[self.va(r)]
        del size

    def check(self, regions: list[Region], present: set[int]) -> None:
        it = self.bus.iommu
        for r in regions:
            va = self.va(r)
            size = r.pages << r.shift if r.shift < 30 else GIB
            for probe in (va, va + 0x123, va + size - 8, va + size):
                exp = self.expect(probe)
                for write in (False, True):
                    t = it.translate(SID, 5, probe, write)
                    if exp is None or (write and not exp[1]) or not exp[2]:
                        assert isinstance(t, Fault), (hex(probe), write, t)
                        continue
                    assert isinstance(t, Translation), (hex(probe), write, t)
                    assert t.hpa == exp[0], (hex(probe), hex(t.hpa), hex(exp[0]))
                    if probe < va + size:
                        assert t.page_shift == r.shift
        del present


def _ss_user(regions: list[Region]) -> list[Region]:
    return [Region(r.slot, r.shift, r.pages, r.write, True) for r in regions]


@pytest.mark.parametrize(
    "kind,levels",
    [
        (DomainKind.FIRST_STAGE, 4),
        (DomainKind.FIRST_STAGE, 5),
        (DomainKind.SECOND_STAGE, 4),
        (DomainKind.SECOND_STAGE, 3),
        (DomainKind.NESTED, 4),
    ],
)
@SETTINGS
@given(regions=regions_st)
def test_random_mappings_match_reference(kind: DomainKind, levels: int, regions: list[Region]) -> None:
    if kind is DomainKind.SECOND_STAGE:
        regions = _ss_user(regions)
        if levels == 3:
            regions = [r for r in regions if r.slot < 32] or [Region(0, 12, 1, True, True)]
    w = World(kind, levels)
    for r in regions:
        w.map(r)
    w.check(regions, set())


@pytest.mark.parametrize("kind", [DomainKind.FIRST_STAGE, DomainKind.SECOND_STAGE, DomainKind.NESTED])
@SETTINGS
@given(regions=regions_st, ops=st.lists(st.tuples(st.booleans(), st.integers(0, 7)), min_size=1, max_size=12))
def test_map_unmap_sequences_leave_no_stale_translation(
    kind: DomainKind, regions: list[Region], ops: list[tuple[bool, int]]
) -> None:
    if kind is DomainKind.SECOND_STAGE:
        regions = _ss_user(regions)
    w = World(kind, 4)
    mapped: set[int] = set()
    for do_map, i in ops:
        r = regions[i % len(regions)]
        if do_map and r.slot not in mapped:
            w.map(r)
            mapped.add(r.slot)
        elif not do_map and r.slot in mapped:
            w.check([r], mapped)  # fill the IOTLB so a missing invalidation would show
            w.unmap(r)
            mapped.discard(r.slot)
        w.check(regions, mapped)


@SETTINGS
@given(addrs=st.lists(st.integers(0, (1 << 47) - 1), min_size=1, max_size=40))
def test_pass_through_is_identity_below_haw(addrs: list[int]) -> None:
    w = World(DomainKind.PASS_THROUGH, None)
    for a in addrs:
        t = w.bus.iommu.translate(SID, 5, a, a & 1 == 1)
        if a >> 46:
            assert isinstance(t, Fault) and t.reason == 0x83
        elif 0xFEE0_0000 <= a < 0xFEF0_0000:
            assert isinstance(t, Fault) and t.reason == 0x87
        else:
            assert isinstance(t, Translation) and t.hpa == a
