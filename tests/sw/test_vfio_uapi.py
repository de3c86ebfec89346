"""sw/vfio/uapi.py against /usr/include/linux/vfio.h: numbers, sizes and offsets, compiled by gcc."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from siov_sim.sw.vfio import uapi as u

pytestmark = pytest.mark.sw

HEADER = Path("/usr/include/linux/vfio.h")

CONSTANTS = [
    "VFIO_API_VERSION", "VFIO_TYPE1_IOMMU", "VFIO_TYPE1v2_IOMMU", "VFIO_TYPE1_NESTING_IOMMU",
    "VFIO_NOIOMMU_IOMMU", "VFIO_DMA_CC_IOMMU", "VFIO_UNMAP_ALL", "VFIO_UPDATE_VADDR", "VFIO_TYPE", "VFIO_BASE",
    "VFIO_GET_API_VERSION", "VFIO_CHECK_EXTENSION", "VFIO_SET_IOMMU", "VFIO_GROUP_GET_STATUS",
    "VFIO_GROUP_SET_CONTAINER", "VFIO_GROUP_UNSET_CONTAINER", "VFIO_GROUP_GET_DEVICE_FD",
    "VFIO_DEVICE_GET_INFO", "VFIO_DEVICE_GET_REGION_INFO", "VFIO_DEVICE_GET_IRQ_INFO", "VFIO_DEVICE_SET_IRQS",
    "VFIO_DEVICE_RESET", "VFIO_IOMMU_GET_INFO", "VFIO_IOMMU_MAP_DMA", "VFIO_IOMMU_UNMAP_DMA",
    "VFIO_GROUP_FLAGS_VIABLE", "VFIO_GROUP_FLAGS_CONTAINER_SET", "VFIO_DEVICE_FLAGS_RESET",
    "VFIO_DEVICE_FLAGS_PCI", "VFIO_DEVICE_FLAGS_CAPS", "VFIO_REGION_INFO_FLAG_READ",
    "VFIO_REGION_INFO_FLAG_WRITE", "VFIO_REGION_INFO_FLAG_MMAP", "VFIO_REGION_INFO_FLAG_CAPS",
    "VFIO_REGION_INFO_CAP_SPARSE_MMAP", "VFIO_REGION_INFO_CAP_TYPE", "VFIO_REGION_INFO_CAP_MSIX_MAPPABLE",
    "VFIO_IRQ_INFO_EVENTFD", "VFIO_IRQ_INFO_MASKABLE", "VFIO_IRQ_INFO_AUTOMASKED", "VFIO_IRQ_INFO_NORESIZE",
    "VFIO_IRQ_SET_DATA_NONE", "VFIO_IRQ_SET_DATA_BOOL", "VFIO_IRQ_SET_DATA_EVENTFD",
    "VFIO_IRQ_SET_ACTION_MASK", "VFIO_IRQ_SET_ACTION_UNMASK", "VFIO_IRQ_SET_ACTION_TRIGGER",
    "VFIO_IRQ_SET_DATA_TYPE_MASK", "VFIO_IRQ_SET_ACTION_TYPE_MASK",
    "VFIO_PCI_BAR0_REGION_INDEX", "VFIO_PCI_BAR2_REGION_INDEX", "VFIO_PCI_ROM_REGION_INDEX",
    "VFIO_PCI_CONFIG_REGION_INDEX", "VFIO_PCI_VGA_REGION_INDEX", "VFIO_PCI_NUM_REGIONS",
    "VFIO_PCI_INTX_IRQ_INDEX", "VFIO_PCI_MSI_IRQ_INDEX", "VFIO_PCI_MSIX_IRQ_INDEX", "VFIO_PCI_ERR_IRQ_INDEX",
    "VFIO_PCI_REQ_IRQ_INDEX", "VFIO_PCI_NUM_IRQS", "VFIO_IOMMU_INFO_PGSIZES", "VFIO_IOMMU_INFO_CAPS",
    "VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE", "VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION",
    "VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL", "VFIO_DMA_MAP_FLAG_READ", "VFIO_DMA_MAP_FLAG_WRITE",
    "VFIO_DMA_MAP_FLAG_VADDR", "VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP", "VFIO_DMA_UNMAP_FLAG_ALL",
    "VFIO_DMA_UNMAP_FLAG_VADDR",
]  # fmt: skip

# C struct -> (python class, [(field, python offset)])
STRUCTS: dict[str, tuple[type[u._Struct], list[tuple[str, int]]]] = {
    "vfio_info_cap_header": (u.VfioInfoCapHeader, [("id", 0), ("version", 2), ("next", 4)]),
    "vfio_group_status": (u.VfioGroupStatus, [("argsz", 0), ("flags", 4)]),
    "vfio_device_info": (
        u.VfioDeviceInfo,
        [("argsz", 0), ("flags", 4), ("num_regions", 8), ("num_irqs", 12), ("cap_offset", 16)],
    ),
    "vfio_region_info": (
        u.VfioRegionInfo,
        [("argsz", 0), ("flags", 4), ("index", 8), ("cap_offset", 12), ("size", 16), ("offset", 24)],
    ),
    "vfio_region_sparse_mmap_area": (u.VfioRegionSparseMmapArea, [("offset", 0), ("size", 8)]),
    "vfio_region_info_cap_sparse_mmap": (
        u.VfioRegionInfoCapSparseMmap,
        [("header", 0), ("nr_areas", 8), ("reserved", 12), ("areas", 16)],
    ),
    "vfio_irq_info": (u.VfioIrqInfo, [("argsz", 0), ("flags", 4), ("index", 8), ("count", 12)]),
    "vfio_irq_set": (
        u.VfioIrqSet,
        [("argsz", 0), ("flags", 4), ("index", 8), ("start", 12), ("count", 16), ("data", 20)],
    ),
    "vfio_iommu_type1_info": (
        u.VfioIommuType1Info,
        [("argsz", 0), ("flags", 4), ("iova_pgsizes", 8), ("cap_offset", 16)],
    ),
    "vfio_iova_range": (u.VfioIovaRange, [("start", 0), ("end", 8)]),
    "vfio_iommu_type1_info_cap_iova_range": (
        u.VfioIommuType1InfoCapIovaRange,
        [("header", 0), ("nr_iovas", 8), ("reserved", 12), ("iova_ranges", 16)],
    ),
    "vfio_iommu_type1_dma_map": (
        u.VfioIommuType1DmaMap,
        [("argsz", 0), ("flags", 4), ("vaddr", 8), ("iova", 16), ("size", 24)],
    ),
    "vfio_iommu_type1_dma_unmap": (
        u.VfioIommuType1DmaUnmap,
        [("argsz", 0), ("flags", 4), ("iova", 8), ("size", 16), ("data", 24)],
    ),
}


@pytest.fixture(scope="module")
def header_values(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    if not HEADER.exists() or shutil.which("gcc") is None:
        pytest.skip("needs /usr/include/linux/vfio.h and gcc")
    d = tmp_path_factory.mktemp("vfio_h")
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <linux/vfio.h>", "int main(void) {"]
    for c in CONSTANTS:
        lines.append(f'  printf("{c} %llu\\n", (unsigned long long)({c}));')
    for s, (_, fields) in STRUCTS.items():
        lines.append(f'  printf("sizeof:{s} %zu\\n", sizeof(struct {s}));')
        for f, _ in fields:
            lines.append(f'  printf("offsetof:{s}.{f} %zu\\n", offsetof(struct {s}, {f}));')
    lines += ["  return 0;", "}"]
    (d / "v.c").write_text("\n".join(lines))
    subprocess.run(["gcc", "-o", str(d / "v"), str(d / "v.c")], check=True, capture_output=True)
    out = subprocess.run([str(d / "v")], check=True, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


@pytest.mark.parametrize("name", CONSTANTS)
def test_constant_matches_header(header_values: dict[str, int], name: str) -> None:
    assert getattr(u, name) == header_values[name], name


@pytest.mark.parametrize("name", sorted(STRUCTS))
def test_struct_layout_matches_header(header_values: dict[str, int], name: str) -> None:
    cls, fields = STRUCTS[name]
    fixed = struct.calcsize(cls.FMT)
    assert fixed == header_values[f"sizeof:{name}"], f"sizeof {name}"
    for f, off in fields:
        assert header_values[f"offsetof:{name}.{f}"] == off, f"{name}.{f}"


def test_ioctl_numbers_are_io_semicolon() -> None:
    assert u.VFIO_GET_API_VERSION == 0x3B64
    assert (ord(";") << 8) | 114 == u.VFIO_IOMMU_UNMAP_DMA


def test_sparse_mmap_roundtrip() -> None:
    cap = u.VfioRegionInfoCapSparseMmap(
        [u.VfioRegionSparseMmapArea(0, 0x2000), u.VfioRegionSparseMmapArea(0x4000, 0x1000)]
    )
    back = u.VfioRegionInfoCapSparseMmap.unpack(cap.pack())
    assert [(a.offset, a.size) for a in back.areas] == [(0, 0x2000), (0x4000, 0x1000)]
