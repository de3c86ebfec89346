"""IOMMU driver (work in progress: signatures only, see package docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class IommuError(Exception):
    """The IOMMU did not respond as expected, reported an error, or an argument is invalid."""


class DomainKind(Enum):
    FIRST_STAGE = 1
    SECOND_STAGE = 2
    NESTED = 3
    PASS_THROUGH = 4


@dataclass(frozen=True, slots=True)
class FaultRecord:
    sid: int
    pasid: int | None
    addr: int
    reason: int
    write: bool
    priv: bool


class Domain:
    """Placeholder."""


class IommuDriver:
    """Placeholder."""

    def __init__(self, bus: Any, base: int = 0xFED9_0000) -> None:
        self.bus = bus
        self.base = base
