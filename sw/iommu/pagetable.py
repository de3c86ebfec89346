"""Page-table builder for first-stage (x86-64) and second-stage (EPT-like) tables (work in progress)."""

from __future__ import annotations

from enum import Enum


class PteFormat(Enum):
    FIRST_STAGE = "fs"
    SECOND_STAGE = "ss"


class PageTable:
    """Placeholder; the real builder lands in the next commit."""
