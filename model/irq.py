"""Interrupt controller for the x86 MSI window 0xFEE0_0000-0xFEEF_FFFF.

Hands out ``(address, data)`` messages bound to handlers (the analogue of an irq domain giving out
vectors) and dispatches DWORD writes into the window to them. A message nobody allocated is
counted and recorded as spurious; nothing here raises into the simulation (a handler that raises is
logged and counted, too).

Message format: compatibility-format x86 MSI, ``addr = 0xFEE0_0000 | dest_id << 12`` (physical
destination mode, no redirection hint), ``data = vector`` (fixed delivery, edge). Vectors 0x20..0xFF
are handed out per destination; destinations 0..255 are used in turn when vectors run out.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

MSI_BASE = 0xFEE0_0000
MSI_END = 0xFEF0_0000  # exclusive
MSI_SIZE = MSI_END - MSI_BASE
FIRST_VECTOR = 0x20
LAST_VECTOR = 0xFF

MsiHandler = Callable[[int, int], None]
"""Called as ``handler(addr, data)`` when the message is written."""


def is_msi_address(addr: int) -> bool:
    return MSI_BASE <= addr < MSI_END


class IrqExhausted(Exception):
    """No free (destination, vector) pair left."""


@dataclass(frozen=True, slots=True)
class SpuriousIrq:
    addr: int
    data: int


@dataclass
class InterruptController:
    """MSI dispatcher; one per simulated host."""

    name: str = "irq"
    spurious_max: int = 1024
    _handlers: dict[tuple[int, int], MsiHandler] = field(default_factory=dict, repr=False)
    _next: int = 0
    spurious: list[SpuriousIrq] = field(default_factory=list)
    spurious_count: int = 0
    delivered: int = 0
    handler_errors: int = 0
    counts: Counter[tuple[int, int]] = field(default_factory=Counter)  # delivered, per message

    def __post_init__(self) -> None:
        self._log = logging.getLogger(f"{__name__}.{self.name}")

    def alloc(self, handler: MsiHandler) -> tuple[int, int]:
        """Bind ``handler`` to a fresh message; returns ``(addr, data)`` to program into a device."""
        nvec = LAST_VECTOR - FIRST_VECTOR + 1
        for _ in range(256 * nvec):
            n = self._next
            self._next = (n + 1) % (256 * nvec)
            dest, vec = n // nvec, FIRST_VECTOR + n % nvec
            addr = MSI_BASE | dest << 12
            if (addr, vec) not in self._handlers:
                self._handlers[(addr, vec)] = handler
                return addr, vec
        raise IrqExhausted("no free MSI vector")

    def bind(self, addr: int, data: int, handler: MsiHandler) -> None:
        """Bind a specific message (e.g. one chosen by a guest); replaces any previous binding."""
        self._handlers[(addr, data & 0xFFFF_FFFF)] = handler

    def free(self, addr: int, data: int) -> None:
        self._handlers.pop((addr, data & 0xFFFF_FFFF), None)

    def allocated(self) -> int:
        return len(self._handlers)

    def deliver(self, addr: int, data: int) -> bool:
        """Dispatch a DWORD write to the MSI window; returns False for a spurious message."""
        h = self._handlers.get((addr, data & 0xFFFF_FFFF))
        if h is None:
            self.spurious_count += 1
            if len(self.spurious) < self.spurious_max:
                self.spurious.append(SpuriousIrq(addr, data))
            self._log.warning("spurious interrupt: addr=0x%x data=0x%x", addr, data)
            return False
        self.delivered += 1
        self.counts[(addr, data & 0xFFFF_FFFF)] += 1
        try:
            h(addr, data)
        except Exception:  # a handler bug must not kill the simulation's TLP path
            self.handler_errors += 1
            self._log.exception("interrupt handler for addr=0x%x data=0x%x raised", addr, data)
        return True
