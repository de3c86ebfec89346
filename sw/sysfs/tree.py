"""A Linux-shaped sysfs of the simulated host: the PF as a PCI device, the VDCM as an mdev parent.

:class:`SysfsTree` answers ``stat``/``listdir``/``readlink``/``read``/``write`` on paths relative
to the tree's root, the way Linux's sysfs answers them for a PCI device driven by an mdev parent
driver. Every answer is computed when asked, from the live objects:

* ``devices/pci0000:00/<PF>/config`` reads and writes the PF's configuration space through
  ``HostBus.cfg_read``/``cfg_write`` (on the simulator: CfgRd0/CfgWr0 TLPs that the RTL answers,
  with the byte enables of the access), ``vendor``, ``device``, ``class``, ... are read from it;
  ``resource`` lists the BARs as Linux prints them, ``resourceN`` reads/writes the BAR with MMIO
  TLPs (naturally aligned 1/2/4/8-byte accesses; Linux offers memory BARs only through mmap,
  which a FUSE file with direct I/O cannot).
* ``.../<PF>/mdev_supported_types/<type>/{name,description,device_api,available_instances,
  create,devices/}``: writing a UUID to ``create`` calls :meth:`Vdcm.create`; the write fails
  with the errno Linux's mdev core or the parent driver returns (EINVAL for a malformed UUID,
  EEXIST for one in use, ENOSPC when the ADIs are gone) and nothing is allocated.
* ``.../<PF>/<uuid>/{remove,mdev_type,iommu_group,...}``: writing ``1`` to ``remove`` calls
  :meth:`Vdcm.remove` (EBUSY while a VFIO user holds it); vendor attributes ``pasid``, ``adis``,
  ``vconfig`` (the VDEV's virtual config space in ``lspci -xxxx`` form, for ``lspci -F``).
* the links Linux has: ``bus/pci/devices/<PF>``, ``class/mdev_bus/<PF>``,
  ``bus/mdev/devices/<uuid>``, ``kernel/iommu_groups/<n>/devices/<uuid>``, ``<PF>/driver``.
  Links are relative, as in sysfs, so the tree works wherever it is mounted (``/sys`` in a
  private mount namespace for ``mdevctl``, any directory for ``lspci -A linux-sysfs``).

The methods are ``async`` and must run where the simulation runs: the FUSE side
(:mod:`.fuse`) hands each request over through :class:`~.bridge.SimBridge`. Errors are
:class:`OSError` with the errno the syscall returns.
"""

from __future__ import annotations

import errno
import posixpath
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from siov_sim.model.pcie.cfgdump import format_lspci
from siov_sim.sw.bus import HostBus
from siov_sim.sw.driver import pci
from siov_sim.sw.driver.pf import PfDriver
from siov_sim.sw.vdcm.vdcm import Vdcm
from siov_sim.sw.vdcm.vdev import Vdev
from siov_sim.sw.vfio.device_ops import VfioError

CONFIG_SIZE = 4096  # PCI Express: the whole extended configuration space
ATTR_SIZE = 4096  # what sysfs reports for every text attribute
#: Linux's uuid_parse(): exactly 8-4-4-4-12 hex digits (a trailing newline is ignored)
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# struct resource flags (include/linux/ioport.h) as /sys/bus/pci/devices/*/resource prints them
IORESOURCE_MEM = 0x0000_0200
IORESOURCE_PREFETCH = 0x0000_2000
IORESOURCE_SIZEALIGN = 0x0004_0000
IORESOURCE_MEM_64 = 0x0010_0000
PCI_NUM_RESOURCE_LINES = 13  # 6 BARs + ROM + 6 SR-IOV BARs, what Linux prints for an endpoint
VCONFIG_TEXT_SIZE = 16384  # the lspci -xxxx text of 4 KiB (about 13 KB): more than a sysfs page


def _oserror(err: int, what: str) -> OSError:
    return OSError(err, f"{errno.errorcode.get(err, err)}: {what}")


class Kind(Enum):
    DIR = "dir"
    FILE = "file"
    LINK = "link"


@dataclass(frozen=True, slots=True)
class Stat:
    kind: Kind
    mode: int  # permission bits
    size: int


Reader = Callable[[int, int], Awaitable[bytes]]
Writer = Callable[[int, bytes], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Attr:
    """One attribute file; ``read``/``write`` are None when the attribute has no show/store."""

    read: Reader | None = None
    write: Writer | None = None
    size: int = ATTR_SIZE

    @property
    def mode(self) -> int:
        return (0o444 if self.read else 0) | (0o200 if self.write else 0)


@dataclass(frozen=True, slots=True)
class Link:
    target: str  # absolute inside the tree ("/devices/..."); readlink makes it relative


Node = dict[str, "Node"] | Attr | Link


def text(show: Callable[[], Awaitable[str]]) -> Reader:
    async def read(off: int, size: int) -> bytes:
        return (await show()).encode()[off : off + size]

    return read


def const(value: str) -> Reader:
    async def show() -> str:
        return value

    return text(show)


class SysfsTree:
    """The tree of one PF with its VDCM (see the module docstring)."""

    def __init__(
        self,
        bus: HostBus,
        pf: PfDriver,
        vdcm: Vdcm,
        *,
        driver: str = "siov",
        parent_bdf: int | None = None,
        domain: int = 0,
    ) -> None:
        self.bus = bus
        self.pf = pf
        self.vdcm = vdcm
        self.driver = driver
        for t in vdcm.supported_types():  # mdev core names type dirs "<driver>-<type>"
            if not t.type_id.startswith(f"{driver}-"):
                raise ValueError(f"mdev type {t.type_id!r} lacks the driver prefix {driver!r}-")
        self.domain = domain
        self.pf_name = self.pci_name(pf.bdf)
        root = f"/devices/pci{domain:04x}:00"
        if parent_bdf is not None:  # the root port the PF sits below, as in Linux's device path
            root += "/" + self.pci_name(parent_bdf)
        self.pf_path = f"{root}/{self.pf_name}"

    def pci_name(self, bdf: int) -> str:
        return f"{self.domain:04x}:{bdf >> 8:02x}:{bdf >> 3 & 0x1F:02x}.{bdf & 7}"

    # ---- the tree, built on every lookup from the live objects ---------------------------------
    def _root(self) -> dict[str, Node]:
        vdevs = sorted(self.vdcm.vdevs(), key=lambda v: v.uuid)
        pf_dir = self._pf_dir(vdevs)
        tree: dict[str, Node] = {}
        node = tree
        parts = self.pf_path.strip("/").split("/")
        for p in parts[:-1]:
            nxt: dict[str, Node] = {}
            node[p] = nxt
            node = nxt
        node[parts[-1]] = pf_dir
        groups: dict[str, Node] = {}
        for v in vdevs:
            gid = self._group(v)
            if gid is not None:
                groups[str(gid)] = {
                    "devices": {v.uuid: Link(f"{self.pf_path}/{v.uuid}")},
                    "type": Attr(const("DMA\n")),
                }
        tree["bus"] = {
            "pci": {
                "devices": {self.pf_name: Link(self.pf_path)},
                "drivers": {self.driver: {self.pf_name: Link(self.pf_path)}},
            },
            "mdev": {
                "devices": {v.uuid: Link(f"{self.pf_path}/{v.uuid}") for v in vdevs},
                "drivers": {"vfio_mdev": {v.uuid: Link(f"{self.pf_path}/{v.uuid}") for v in vdevs}},
            },
        }
        tree["class"] = {"mdev_bus": {self.pf_name: Link(self.pf_path)}}
        tree["kernel"] = {"iommu_groups": groups}
        return tree

    def _group(self, v: Vdev) -> int | None:
        try:
            return self.vdcm.group_id(v.uuid)
        except VfioError:
            return None

    def _pf_dir(self, vdevs: list[Vdev]) -> dict[str, Node]:
        bdf = self.pf.bdf

        def cfg_field(off: int, width: int, fmt: str) -> Reader:
            async def show() -> str:
                raw = await self.bus.cfg_read(bdf, off, width)
                return fmt.format(int.from_bytes(raw, "little"))

            return text(show)

        async def class_code() -> str:
            raw = await self.bus.cfg_read(bdf, pci.PCI_REVISION_ID, 4)
            return f"0x{int.from_bytes(raw, 'little') >> 8:06x}\n"

        async def modalias() -> str:
            raw = await self.bus.cfg_read(bdf, 0, 0x30)
            v, d = int.from_bytes(raw[0:2], "little"), int.from_bytes(raw[2:4], "little")
            sv, sd = int.from_bytes(raw[0x2C:0x2E], "little"), int.from_bytes(raw[0x2E:0x30], "little")
            bc, sc, i = raw[0x0B], raw[0x0A], raw[0x09]
            return f"pci:v{v:08X}d{d:08X}sv{sv:08X}sd{sd:08X}bc{bc:02X}sc{sc:02X}i{i:02X}\n"

        d: dict[str, Node] = {
            "config": Attr(self._config_read, self._config_write, CONFIG_SIZE),
            "vendor": Attr(cfg_field(pci.PCI_VENDOR_ID, 2, "0x{:04x}\n")),
            "device": Attr(cfg_field(pci.PCI_DEVICE_ID, 2, "0x{:04x}\n")),
            "subsystem_vendor": Attr(cfg_field(pci.PCI_SUBSYSTEM_VENDOR_ID, 2, "0x{:04x}\n")),
            "subsystem_device": Attr(cfg_field(pci.PCI_SUBSYSTEM_ID, 2, "0x{:04x}\n")),
            "revision": Attr(cfg_field(pci.PCI_REVISION_ID, 1, "0x{:02x}\n")),
            "class": Attr(text(class_code)),
            "modalias": Attr(text(modalias)),
            "irq": Attr(const("0\n")),
            "numa_node": Attr(const("-1\n")),
            "enable": Attr(const("1\n")),
            "msi_bus": Attr(const("1\n")),
            "resource": Attr(text(self._resource)),
            "driver": Link(f"/bus/pci/drivers/{self.driver}"),
            "subsystem": Link("/bus/pci"),
            "mdev_supported_types": self._types_dir(vdevs),
        }
        for i in range(6):
            try:
                bar = self.pf.bar(i)
            except (KeyError, IndexError, AttributeError):
                continue
            d[f"resource{i}"] = Attr(*self._bar_io(bar.addr), size=bar.size)
        for v in vdevs:
            d[v.uuid] = self._mdev_dir(v)
        return d

    def _types_dir(self, vdevs: list[Vdev]) -> dict[str, Node]:
        out: dict[str, Node] = {}
        for t in self.vdcm.supported_types():
            tid = t.type_id

            async def avail(tid: str = tid) -> str:
                return f"{self.vdcm.available_instances(tid)}\n"

            out[tid] = {
                "name": Attr(const(f"{t.name}\n")),
                "description": Attr(const(f"{t.description}\n")),
                "device_api": Attr(const(f"{t.device_api}\n")),
                "available_instances": Attr(text(avail)),
                "create": Attr(write=self._create_writer(tid)),
                "devices": {v.uuid: Link(f"{self.pf_path}/{v.uuid}") for v in vdevs if v.mdev_type.type_id == tid},
            }
        return out

    def _mdev_dir(self, v: Vdev) -> dict[str, Node]:
        async def vconfig() -> str:
            data = v.config.read(0, CONFIG_SIZE)
            vendor, device = int.from_bytes(data[0:2], "little"), int.from_bytes(data[2:4], "little")
            slot = f"00:{v.vbdf >> 3 & 0x1F:02x}.{v.vbdf & 7}"
            return format_lspci(data, slot, f"VDEV {v.uuid} ({v.mdev_type.type_id}) {vendor:04x}:{device:04x}")

        d: dict[str, Node] = {
            "remove": Attr(write=self._remove_writer(v.uuid)),
            "mdev_type": Link(f"{self.pf_path}/mdev_supported_types/{v.mdev_type.type_id}"),
            "driver": Link("/bus/mdev/drivers/vfio_mdev"),
            "subsystem": Link("/bus/mdev"),
            "uevent": Attr(const(f"MDEV_TYPE={v.mdev_type.type_id}\n")),
            "pasid": Attr(const(f"{v.pasid}\n")),
            "adis": Attr(const(",".join(map(str, v.adis)) + "\n")),
            "vconfig": Attr(text(vconfig), size=VCONFIG_TEXT_SIZE),
        }
        gid = self._group(v)
        if gid is not None:
            d["iommu_group"] = Link(f"/kernel/iommu_groups/{gid}")
        return d

    # ---- attribute bodies --------------------------------------------------------------------
    async def _config_read(self, off: int, size: int) -> bytes:
        """Linux ``pci_read_config``: clipped to the config space, read in naturally aligned
        pieces (a byte, a word, dwords), each one CfgRd with the matching byte enables."""
        end = min(off + size, CONFIG_SIZE)
        out = bytearray()
        pos = off
        while pos < end:
            n = 1 if pos & 1 or end - pos == 1 else 2 if pos & 2 or end - pos < 4 else 4
            out += await self.bus.cfg_read(self.pf.bdf, pos, n)
            pos += n
        return bytes(out)

    async def _config_write(self, off: int, data: bytes) -> int:
        """Linux ``pci_write_config``: the same pieces, each one CfgWr (only the bytes written)."""
        if off >= CONFIG_SIZE:
            return 0
        data = data[: CONFIG_SIZE - off]
        pos = 0
        while pos < len(data):
            a, left = off + pos, len(data) - pos
            n = 1 if a & 1 or left == 1 else 2 if a & 2 or left < 4 else 4
            await self.bus.cfg_write(self.pf.bdf, a, data[pos : pos + n])
            pos += n
        return len(data)

    async def _resource(self) -> str:
        lines = []
        for i in range(PCI_NUM_RESOURCE_LINES):
            bar = None
            if i < 6:
                try:
                    bar = self.pf.bar(i)
                except (KeyError, IndexError, AttributeError):
                    bar = None
            if bar is None or not bar.size:
                lines.append(f"0x{0:016x} 0x{0:016x} 0x{0:016x}")
                continue
            flags = IORESOURCE_MEM | IORESOURCE_SIZEALIGN
            if bar.is64:
                flags |= IORESOURCE_MEM_64 | pci.PCI_BASE_ADDRESS_MEM_TYPE_64
            if bar.prefetch:
                flags |= IORESOURCE_PREFETCH | pci.PCI_BASE_ADDRESS_MEM_PREFETCH
            lines.append(f"0x{bar.addr:016x} 0x{bar.addr + bar.size - 1:016x} 0x{flags:016x}")
        return "\n".join(lines) + "\n"

    def _bar_io(self, base: int) -> tuple[Reader, Writer]:
        def check(off: int, n: int, size: int) -> None:
            if n not in (1, 2, 4, 8) or off % n or off + n > size:
                raise _oserror(errno.EINVAL, f"BAR access 0x{off:x}+{n}: naturally aligned 1/2/4/8 bytes only")

        async def read(off: int, size: int) -> bytes:
            check(off, size, 1 << 62)
            return await self.bus.mmio_read(base + off, size)

        async def write(off: int, data: bytes) -> int:
            check(off, len(data), 1 << 62)
            await self.bus.mmio_write(base + off, data)
            return len(data)

        return read, write

    def _create_writer(self, type_id: str) -> Writer:
        async def create(_off: int, data: bytes) -> int:
            s = data.decode(errors="replace")
            m = UUID_RE.match(s)
            if m is None or s[m.end() :].strip():  # mdev core: uuid_parse() or -EINVAL
                raise _oserror(errno.EINVAL, f"{s.strip()!r} is not a UUID")
            try:
                await self.vdcm.create(type_id, m.group(0).lower())
            except VfioError as exc:
                raise _oserror(exc.errno, str(exc)) from exc
            return len(data)

        return create

    def _remove_writer(self, uuid: str) -> Writer:
        async def remove(_off: int, data: bytes) -> int:
            s = data.decode(errors="replace").strip()
            try:
                value = int(s, 0)  # kstrtoul(buf, 0)
            except ValueError as exc:
                raise _oserror(errno.EINVAL, f"{s!r} is not a number") from exc
            if value:
                try:
                    await self.vdcm.remove(uuid)
                except VfioError as exc:
                    raise _oserror(exc.errno, str(exc)) from exc
            return len(data)

        return remove

    # ---- the VFS side -------------------------------------------------------------------------
    def _lookup(self, path: str) -> Node:
        """The node at ``path``; links in the middle of the path are followed (as the VFS does
        before FUSE sees a path), the last component is not."""
        root = self._root()
        parts = [p for p in path.split("/") if p]
        node: Node = root
        i = hops = 0
        while i < len(parts):
            if isinstance(node, Link):
                hops += 1
                if hops > 40:
                    raise _oserror(errno.ELOOP, path)
                parts = [p for p in node.target.split("/") if p] + parts[i:]
                node, i = root, 0
                continue
            if not isinstance(node, dict) or parts[i] not in node:
                raise _oserror(errno.ENOENT if isinstance(node, dict) else errno.ENOTDIR, path)
            node = node[parts[i]]
            i += 1
        return node

    async def stat(self, path: str) -> Stat:
        node = self._lookup(path)
        if isinstance(node, dict):
            return Stat(Kind.DIR, 0o755, 0)
        if isinstance(node, Link):
            return Stat(Kind.LINK, 0o777, len(self._relative(path, node.target)))
        return Stat(Kind.FILE, node.mode, node.size)

    async def listdir(self, path: str) -> list[str]:
        node = self._lookup(path)
        if not isinstance(node, dict):
            raise _oserror(errno.ENOTDIR, path)
        return sorted(node)

    async def readlink(self, path: str) -> str:
        node = self._lookup(path)
        if not isinstance(node, Link):
            raise _oserror(errno.EINVAL, path)
        return self._relative(path, node.target)

    @staticmethod
    def _relative(path: str, target: str) -> str:
        return posixpath.relpath(target, posixpath.dirname("/" + path.strip("/")))

    def _attr(self, path: str) -> Attr:
        node = self._lookup(path)
        if isinstance(node, dict):
            raise _oserror(errno.EISDIR, path)
        if isinstance(node, Link):  # FUSE resolves links itself; a direct call gets ELOOP
            raise _oserror(errno.ELOOP, path)
        return node

    async def check_open(self, path: str, read: bool, write: bool) -> None:
        """kernfs: opening for reading needs a show, for writing a store, else EACCES."""
        a = self._attr(path)
        if (read and a.read is None) or (write and a.write is None):
            raise _oserror(errno.EACCES, path)

    async def read(self, path: str, size: int, offset: int) -> bytes:
        a = self._attr(path)
        if a.read is None:
            raise _oserror(errno.EACCES, path)
        if a.size == ATTR_SIZE and offset >= ATTR_SIZE:
            return b""
        return await a.read(offset, size)

    async def write(self, path: str, data: bytes, offset: int) -> int:
        a = self._attr(path)
        if a.write is None:
            raise _oserror(errno.EACCES, path)
        return await a.write(offset, data)

    def mount_hint(self, root: str) -> str:
        """The one-line lspci / mdevctl hint ``make sim`` prints."""
        return (
            f"lspci -A linux-sysfs -O sysfs.path={root}/bus/pci -vvv -s {self.pf_name[5:]};  "
            f"unshare -m sh -c 'mount --bind {root} /sys && mdevctl types && mdevctl list'"
        )
