"""Page-table builder: page-size choice, lookups, unmap rules, table freeing."""

from __future__ import annotations

import pytest

from siov_sim.model.mem import HostMemory, PageAllocator
from siov_sim.sw.iommu.pagetable import HostTableSpace, Mapping, PageTable, PteFormat

pytestmark = pytest.mark.sw


def table(fmt: PteFormat = PteFormat.FIRST_STAGE, levels: int = 4) -> tuple[PageTable, PageAllocator]:
    mem = HostMemory(0, 1 << 32)
    alloc = PageAllocator(0x10_0000, 0x100_0000)
    return PageTable(mem, HostTableSpace(mem, alloc), fmt, levels), alloc


def test_largest_aligned_pages_are_used() -> None:
    pt, _ = table()
    pt.map(0x3FE0_0000, 0x7FE0_0000, 0x20_0000 + 0x4000_0000 + 0x1000)
    sizes = [m.page_shift for _, m in pt.leaves()]
    assert sizes == [21, 30, 12]
    assert pt.lookup(0x4000_1234) == Mapping(0x8000_1234, 30, True, True, True)
    assert pt.lookup(0x8000_0000) == Mapping(0xC000_0000, 12, True, True, True)
    assert pt.lookup(0x8000_1000) is None


def test_misaligned_pa_forces_small_pages() -> None:
    pt, _ = table(PteFormat.SECOND_STAGE, 3)
    pt.map(0x20_0000, 0x1000, 0x20_0000, write=False)
    assert {m.page_shift for _, m in pt.leaves()} == {12}
    assert pt.lookup(0x20_0010) == Mapping(0x1010, 12, True, False, True)


def test_errors() -> None:
    pt, _ = table()
    with pytest.raises(ValueError):
        pt.map(0x1001, 0, 4096)
    with pytest.raises(ValueError):
        pt.map(0x0000_8000_0000_0000, 0, 4096)  # not canonical (4-level)
    with pytest.raises(ValueError):
        PageTable(pt.mem, pt.space, PteFormat.SECOND_STAGE, 2)
    pt.map(0, 0, 0x20_0000)
    with pytest.raises(ValueError):
        pt.map(0x1000, 0, 4096)  # inside a 2M page
    with pytest.raises(ValueError):
        pt.unmap(0x1000, 4096)  # would split the 2M page


def test_unmap_frees_empty_tables_but_not_root() -> None:
    pt, alloc = table()
    base = alloc.in_use()
    pt.map(0x7F00_0000_0000, 0x10_0000, 0x3000)
    assert alloc.in_use() == base + 3 * 4096
    assert pt.unmap(0x7F00_0000_1000, 0x1000) == []
    freed = pt.unmap(0x7F00_0000_0000, 0x3000)
    assert len(freed) == 3
    pt.free_tables(freed)
    assert alloc.in_use() == base and pt.tables() == [pt.root]
    pt.unmap(0, 0x40_0000)  # unmapping nothing is fine
    pt.destroy()
    assert alloc.in_use() == 0
