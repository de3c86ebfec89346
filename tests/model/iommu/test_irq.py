"""MSI window interrupt controller: allocation, dispatch, spurious messages, failing handlers."""

from __future__ import annotations

import pytest

from siov_sim.model.irq import MSI_BASE, InterruptController, IrqExhausted, is_msi_address

pytestmark = pytest.mark.model


def test_alloc_deliver_free() -> None:
    ic = InterruptController()
    got: list[tuple[int, int]] = []
    a = ic.alloc(lambda addr, data: got.append((addr, data)))
    b = ic.alloc(lambda addr, data: got.append((-addr, data)))
    assert a != b and is_msi_address(a[0]) and is_msi_address(b[0])
    assert ic.deliver(*a) and ic.deliver(*b)
    assert got == [a, (-b[0], b[1])] and ic.delivered == 2
    ic.free(*a)
    assert not ic.deliver(*a)
    assert ic.spurious_count == 1 and ic.spurious[0].addr == a[0]
    assert ic.allocated() == 1


def test_spurious_never_raises_and_is_bounded() -> None:
    ic = InterruptController(spurious_max=3)
    for i in range(10):
        assert not ic.deliver(MSI_BASE | i << 12, i)
    assert ic.spurious_count == 10 and len(ic.spurious) == 3


def test_handler_exception_is_contained() -> None:
    ic = InterruptController()

    def boom(addr: int, data: int) -> None:
        raise RuntimeError("driver bug")

    msg = ic.alloc(boom)
    assert ic.deliver(*msg) and ic.handler_errors == 1


def test_bind_specific_message_and_exhaustion() -> None:
    ic = InterruptController()
    seen: list[int] = []
    ic.bind(0xFEE0_1000, 0x45, lambda a, d: seen.append(d))
    ic.deliver(0xFEE0_1000, 0x45)
    assert seen == [0x45]
    small = InterruptController()
    for _ in range(256 * 224):
        small.alloc(lambda a, d: None)
    with pytest.raises(IrqExhausted):
        small.alloc(lambda a, d: None)
