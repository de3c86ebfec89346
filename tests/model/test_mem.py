from __future__ import annotations

import pytest

from siov_sim.model.mem import PAGE_SIZE, BusError, FlatHostMemory, HostMemory, OutOfMemory, PageAllocator

pytestmark = pytest.mark.model
STORES = [HostMemory, FlatHostMemory]  # sparse pages and the flat buffer the fast link shares with C++


@pytest.mark.parametrize("store", STORES)
def test_reads_of_untouched_memory_are_zero_and_writes_span_pages(store: type[HostMemory]) -> None:
    m = store(0x1000, 0x10000)
    assert m.read(0x2000, 16) == bytes(16)
    data = bytes(range(256)) * 40
    m.write(0x1F00, data)  # crosses two page boundaries
    assert m.read(0x1F00, len(data)) == data
    m.write_u64(0x3FFC, 0x1122334455667788)  # straddles a page
    assert m.read_u64(0x3FFC) == 0x1122334455667788
    m.write_u32(0x5000, 0xDEADBEEF)
    assert m.read_u32(0x5000) == 0xDEADBEEF and m.read_u64(0x5000) == 0xDEADBEEF
    assert m.read_u64(0x9000) == 0


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize(("addr", "n"), [(0x0, 4), (0x10FFF, 2), (0x11000, 1), (0x10FF9, 8), (0x800, 0x1000)])
def test_accesses_outside_ram_raise_bus_error(store: type[HostMemory], addr: int, n: int) -> None:
    m = store(0x1000, 0x10000)
    with pytest.raises(BusError):
        m.read(addr, n)
    with pytest.raises(BusError):
        m.write(addr, bytes(n))
    if n == 8:
        with pytest.raises(BusError):
            m.read_u64(addr)


@pytest.mark.parametrize("store", STORES)
def test_nonzero_pages_lists_written_pages(store: type[HostMemory]) -> None:
    m = store(0x1000, 0x10000)
    m.write(0x2FFF, b"\x01\x02")  # two pages
    m.write_u32(0x9000, 7)
    assert m.nonzero_pages(0x1000, 0x11000) == [0x2, 0x3, 0x9]
    assert m.nonzero_pages(0x3000, 0x9000) == [0x3]
    assert m.pages_touched() == 3


def test_flat_memory_is_one_buffer_at_a_fixed_address() -> None:
    import ctypes

    m = FlatHostMemory(0x10000, 0x10000)
    m.write(0x10010, b"seen from C")
    assert ctypes.string_at(m.buffer_address + 0x10, 11) == b"seen from C"
    ctypes.memmove(m.buffer_address + 0x2000, b"written by C", 12)
    assert m.read(0x12000, 12) == b"written by C"
    with pytest.raises(ValueError):
        FlatHostMemory(0x10, 0x1000)


def test_allocator_aligns_merges_and_detects_double_free() -> None:
    a = PageAllocator(0x10000, 16 * PAGE_SIZE)
    x = a.alloc(100)
    y = a.alloc(2 * PAGE_SIZE, align=8 * PAGE_SIZE)
    assert x % PAGE_SIZE == 0 and y % (8 * PAGE_SIZE) == 0
    assert a.in_use() == 3 * PAGE_SIZE and a.allocations() == 2
    a.free(x)
    a.free(y)
    assert a.in_use() == 0
    assert a.alloc(16 * PAGE_SIZE) == 0x10000  # free ranges merged back into one
    with pytest.raises(ValueError, match="freed twice"):
        a.free(y)
    with pytest.raises(OutOfMemory):
        a.alloc(PAGE_SIZE)
    with pytest.raises(ValueError):
        a.alloc(0)
    with pytest.raises(ValueError):
        a.alloc(PAGE_SIZE, align=100)
