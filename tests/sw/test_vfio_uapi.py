"""sw/vfio/uapi.py against /usr/include/linux/vfio.h: numbers, sizes and offsets, compiled by gcc."""

from __future__ import annotations

import dataclasses
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

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
    "VFIO_DEVICE_FEATURE", "VFIO_DEVICE_FEATURE_MASK", "VFIO_DEVICE_FEATURE_GET", "VFIO_DEVICE_FEATURE_SET",
    "VFIO_DEVICE_FEATURE_PROBE", "VFIO_DEVICE_FEATURE_PCI_VF_TOKEN", "VFIO_DEVICE_FEATURE_MIGRATION",
    "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE", "VFIO_MIGRATION_STOP_COPY", "VFIO_MIGRATION_P2P",
    "VFIO_DEVICE_STATE_ERROR", "VFIO_DEVICE_STATE_STOP", "VFIO_DEVICE_STATE_RUNNING",
    "VFIO_DEVICE_STATE_STOP_COPY", "VFIO_DEVICE_STATE_RESUMING", "VFIO_DEVICE_STATE_RUNNING_P2P",
    "VFIO_IOMMU_DIRTY_PAGES", "VFIO_IOMMU_DIRTY_PAGES_FLAG_START", "VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP",
    "VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP",
]  # fmt: skip

# Capability structs carry fields the Python class fills in itself: C member -> value packed.
IMPLICIT: dict[str, dict[str, int]] = {
    "vfio_region_info_cap_sparse_mmap": {"header.id": u.VFIO_REGION_INFO_CAP_SPARSE_MMAP, "header.version": 1,
                                         "nr_areas": 1, "reserved": 0},
    "vfio_iommu_type1_info_cap_iova_range": {"header.id": u.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
                                             "header.version": 1, "nr_iovas": 1, "reserved": 0},
    "vfio_iommu_type1_info_dma_avail": {"header.id": u.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, "header.version": 1},
}  # fmt: skip


def c_name(cls: type) -> str:
    """``VfioIommuType1DmaMap`` -> ``vfio_iommu_type1_dma_map`` (the uapi module's naming rule)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


def struct_classes() -> list[type[u._Struct]]:
    """Every struct the model packs: each dataclass subclass of ``uapi._Struct``."""
    found = {c for c in u._Struct.__subclasses__() if dataclasses.is_dataclass(c) and getattr(u, c.__name__, None) is c}
    return sorted(found, key=lambda c: c.__name__)


def members(cls: type[u._Struct], prefix: str = "") -> list[tuple[str, str, type | None]]:
    """(python path, C member path, element class of a flexible array or None) of each field."""
    out: list[tuple[str, str, type | None]] = []
    cname = c_name(cls)
    nested: dict[str, str] = getattr(cls, "C_MEMBERS", {})  # flattened members of a nested struct
    for f in dataclasses.fields(cls):
        py = prefix + f.name
        if f.name in nested:
            out.append((py, nested[f.name], None))
        elif f.name == "next" and cname in IMPLICIT:
            out.append((py, "header.next", None))
        elif str(f.type).startswith("list["):
            elem = getattr(u, str(f.type)[5:-1])
            out.append((py, f.name, elem))
            out += [(f"{py}[0].{p}", f"{f.name}[0].{c}", None) for p, c, _ in members(elem)]
        else:
            out.append((py, f.name, None))
    return out


def c_paths() -> list[tuple[str, str]]:
    """(struct, member path) pairs whose offset and size the C program prints."""
    out = []
    for cls in struct_classes():
        s = c_name(cls)
        out += [(s, c) for _, c, elem in members(cls) if elem is None]
        out += [(s, c) for c in IMPLICIT.get(s, {})]
    return out


@pytest.fixture(scope="module")
def header_values(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    if not HEADER.exists() or shutil.which("gcc") is None:
        pytest.skip("needs /usr/include/linux/vfio.h and gcc")
    d = tmp_path_factory.mktemp("vfio_h")
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <linux/vfio.h>", "int main(void) {"]
    for c in CONSTANTS:
        lines.append(f'  printf("{c} %llu\\n", (unsigned long long)({c}));')
    for s in sorted({c_name(c) for c in struct_classes()}):
        lines.append(f'  printf("sizeof:{s} %zu\\n", sizeof(struct {s}));')
    for s, m in c_paths():
        lines.append(f'  printf("offsetof:{s}.{m} %zu\\n", offsetof(struct {s}, {m}));')
        lines.append(f'  printf("size:{s}.{m} %zu\\n", sizeof(((struct {s} *)0)->{m}));')
    lines += ["  return 0;", "}"]
    (d / "v.c").write_text("\n".join(lines))
    subprocess.run(["gcc", "-o", str(d / "v"), str(d / "v.c")], check=True, capture_output=True)
    out = subprocess.run([str(d / "v")], check=True, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


@pytest.mark.parametrize("name", CONSTANTS)
def test_constant_matches_header(header_values: dict[str, int], name: str) -> None:
    assert getattr(u, name) == header_values[name], name


def test_every_struct_class_is_checked() -> None:
    names = {c_name(c) for c in struct_classes()}
    assert len(names) >= 14 and "vfio_iommu_type1_dma_map" in names and "vfio_irq_set" in names


def _marked(cls: type[u._Struct], hv: dict[str, int], s: str, prefix: str,
            marks: dict[str, tuple[int, int, int]], counter: list[int]) -> Any:
    """An instance of ``cls`` whose every field holds a marker: the same byte repeated over the
    C member's width, a different byte per field (and one element in each flexible array)."""
    kwargs: dict[str, Any] = {}
    for py, cpath, elem in members(cls):
        if "." in py or "[" in py:
            continue
        if elem is not None:
            kwargs[py] = [_marked(elem, hv, s, f"{prefix}{cpath}[0].", marks, counter)]
            continue
        full = prefix + cpath
        width = hv[f"size:{s}.{full}"]
        counter[0] += 1
        byte = 0x10 + counter[0] * 0x11 & 0xFF or 0x5A
        marks[full] = (hv[f"offsetof:{s}.{full}"], width, byte)
        kwargs[py] = int.from_bytes(bytes([byte]) * width, "little")
    return cls(**kwargs)


@pytest.mark.parametrize("cls", struct_classes(), ids=c_name)
def test_struct_layout_matches_compiled_header(header_values: dict[str, int], cls: type[u._Struct]) -> None:
    """Pack marker values and find each field where gcc's ``offsetof``/``sizeof`` put it, then
    unpack them back: a swapped, misplaced or mis-sized field fails, even if pack and unpack
    agree with each other."""
    s = c_name(cls)
    assert struct.calcsize(cls.FMT) == header_values[f"sizeof:{s}"], f"sizeof(struct {s})"
    marks: dict[str, tuple[int, int, int]] = {}
    obj = _marked(cls, header_values, s, "", marks, [0])
    packed = obj.pack()  # type: ignore[attr-defined]
    for member, (off, width, byte) in marks.items():
        assert packed[off : off + width] == bytes([byte]) * width, f"{s}.{member} at {off}, {width} B"
        assert packed.count(bytes([byte])) == width, f"{s}.{member}: marker byte also elsewhere"
    for member, value in IMPLICIT.get(s, {}).items():
        off, width = header_values[f"offsetof:{s}.{member}"], header_values[f"size:{s}.{member}"]
        assert int.from_bytes(packed[off : off + width], "little") == value, f"{s}.{member}"
    if hasattr(cls, "unpack"):
        assert cls.unpack(packed) == obj, f"unpack(pack(x)) != x for struct {s}"  # type: ignore[attr-defined]


def test_ioctl_numbers_are_io_semicolon() -> None:
    assert u.VFIO_GET_API_VERSION == 0x3B64
    assert (ord(";") << 8) | 114 == u.VFIO_IOMMU_UNMAP_DMA


def test_sparse_mmap_roundtrip() -> None:
    cap = u.VfioRegionInfoCapSparseMmap(
        [u.VfioRegionSparseMmapArea(0, 0x2000), u.VfioRegionSparseMmapArea(0x4000, 0x1000)]
    )
    back = u.VfioRegionInfoCapSparseMmap.unpack(cap.pack())
    assert [(a.offset, a.size) for a in back.areas] == [(0, 0x2000), (0x4000, 0x1000)]
