"""Bad input never raises: random table contents, random requests, random descriptors and MMIO."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siov_sim.model.iommu import Fault, Translation
from siov_sim.model.iommu.regs import Fsts, Reg

from .env import Env

pytestmark = pytest.mark.model
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
u64 = st.integers(0, (1 << 64) - 1)
SID = 0x0101


def _chain(env: Env, raw: list[int]) -> None:
    """Root -> context -> PASID dir -> PASID table -> 4 table pages; every qword from ``raw``.

    When a raw value's bit 63 is set the entry is made mostly sane (present, pointing to the next
    page, only the listed low bits random) so that walks reach the deeper levels; otherwise it
    is the raw 64-bit value (reserved bits, garbage pointers, pointers outside RAM).
    """
    pages = [env.page() for _ in range(8)]
    it = iter(raw * 64)

    def val(nxt: int, keep: int) -> int:
        v = next(it)
        return nxt | 1 | (v & keep) if v >> 63 else v

    sid_bus = SID >> 8
    env.mem.write_u64(env.root + 16 * sid_bus, val(pages[0], 0))
    env.mem.write_u64(env.root + 16 * sid_bus + 8, next(it))
    ctx = pages[0] + (SID & 0x7F) * 32
    env.mem.write_u64(ctx, val(pages[1], 0xE0A | 1 << 2))  # FPD, DTE, PASIDE, PDTS random
    rid = next(it)
    env.mem.write_u64(ctx + 8, rid & 0x7 if rid >> 63 else rid)  # RID_PASID small or garbage
    for pasid_slot in range(0, 64, 13):
        env.mem.write_u64(pages[1] + 8 * pasid_slot, val(pages[2], 0x2))
    for e in range(0, 64, 7):
        base = pages[2] + 64 * e
        q0 = next(it)
        if q0 >> 63:
            q0 = pages[3] | 1 | (q0 & 0x3C2) | 2 << 2  # FPD, PGTT, SSADE random; AW=48-bit
        q1, q2 = next(it) & 0x80_FFFF, next(it)  # DID, PWSNP
        if q2 >> 63:
            q2 = pages[3] | (q2 & 0x9D)  # SRE, FSPM, WPE, EAFE random
        env.mem.write(base, b"".join(x.to_bytes(8, "little") for x in (q0, q1, q2)) + bytes(40))
    for lvl, pg in enumerate(pages[3:7]):
        for i in range(0, 512, 17):
            env.mem.write_u64(pg + 8 * i, val(pages[4 + lvl], 0xFFE))


@SETTINGS
@given(
    raw=st.lists(u64, min_size=8, max_size=32),
    reqs=st.lists(
        st.tuples(st.one_of(st.none(), st.integers(0, (1 << 21) - 1)), u64, st.booleans(), st.booleans()),
        min_size=1,
        max_size=8,
    ),
    caching=st.booleans(),
)
def test_random_tables_never_raise(
    raw: list[int], reqs: list[tuple[int | None, int, bool, bool]], caching: bool
) -> None:
    env = Env(caching=caching)
    env.enable()
    _chain(env, raw)
    for pasid, addr, write, pmr in reqs:
        for _ in range(2):  # second time from the caches
            r = env.iommu.translate(SID, pasid, addr, write, pmr)
            assert isinstance(r, Translation | Fault)


@SETTINGS
@given(descs=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=10))
def test_random_descriptors_never_raise(descs: list[bytes]) -> None:
    env = Env()
    env.enable()
    env.submit(*descs)
    iqe = env.r32(Reg.FSTS) & Fsts.IQE
    assert iqe or env.r64(Reg.IQH) == env.r64(Reg.IQT)


@SETTINGS
@given(ops=st.lists(st.tuples(st.integers(-8, 0x1008), st.sampled_from([1, 2, 3, 4, 8, 16]), u64), max_size=40))
def test_random_mmio_never_raises(ops: list[tuple[int, int, int]]) -> None:
    env = Env()
    for off, size, val in ops:
        env.iommu.mmio_write(off, size, val)
        env.iommu.mmio_read(off, size)
    env.iommu.translate(SID, None, 0x1000)
    env.iommu.translate(SID, 1, 0x1000, True)
