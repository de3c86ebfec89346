"""mdev-style supported types: what ``mdev_supported_types/<type>/`` shows in sysfs."""

from __future__ import annotations

from dataclasses import dataclass

from siov_sim.sw.vfio.uapi import VFIO_DEVICE_API_PCI_STRING


@dataclass(frozen=True, slots=True)
class MdevType:
    """One VDEV flavour: how many ADIs (queue blocks) it bundles."""

    type_id: str  # the sysfs directory name, e.g. "siov-1q"
    name: str
    description: str
    num_queues: int
    subsys_id: int
    device_api: str = VFIO_DEVICE_API_PCI_STRING


@dataclass(frozen=True, slots=True)
class MdevTypeInfo:
    """The attribute files of a type directory, as read at one moment."""

    type_id: str
    name: str
    description: str
    device_api: str
    available_instances: int


DEFAULT_TYPES: tuple[MdevType, ...] = (
    MdevType("siov-1q", "SIOV-1Q", "1 queue block (COPY/FILL/SEND), 1 portal page, 1 IMS vector", 1, 0x0001),
    MdevType("siov-4q", "SIOV-4Q", "4 queue blocks (COPY/FILL/SEND), 4 portal pages, 4 IMS vectors", 4, 0x0004),
)
