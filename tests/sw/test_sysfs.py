"""The live sysfs tree (sw/sysfs) on the fake host: the tree itself, then the real tools on FUSE.

The first tests call :class:`SysfsTree` directly (no FUSE): mdev create/remove with Linux's
errno and nothing leaked, config space read and written with the accesses Linux makes, the
``resource`` format, the links mdevctl and lspci follow. The last ones mount the tree with FUSE
and run Debian's ``lspci``, ``setpci`` and ``mdevctl`` against it (the RTL version of the same is
``tests/system/test_sysfs_live.py``); they skip, saying why, where FUSE or the tools are missing.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from siov_sim.model.pcie.cfgdump import parse_lspci
from siov_sim.sw.sysfs import SimBridge, SysfsServer, SysfsTree, unavailable
from siov_sim.sw.sysfs.tree import Kind
from siov_sim.tb import debdeps

from .fakes import PF_BDF
from .stack import Stack, build, run

pytestmark = pytest.mark.sw
PF = "0000:01:00.0"
PFDIR = f"devices/pci0000:00/{PF}"
TYPES = f"class/mdev_bus/{PF}/mdev_supported_types"


async def tree_of(num_adis: int = 8) -> tuple[Stack, SysfsTree]:
    st = await build(num_adis)
    return st, SysfsTree(st.host, st.pf, st.vdcm)


async def oserr(coro: object) -> int:
    with pytest.raises(OSError) as ei:
        await coro  # type: ignore[misc]
    assert ei.value.errno is not None
    return ei.value.errno


def test_mdev_types_and_create_remove_with_linux_errnos() -> None:
    async def body() -> None:
        st, t = await tree_of(8)
        # class/mdev_bus/<PF> resolves (through its relative link) to the PF directory
        assert await t.readlink(f"class/mdev_bus/{PF}") == f"../../{PFDIR}"
        assert await t.listdir(TYPES) == ["siov-1q", "siov-4q"]
        assert await t.read(f"{TYPES}/siov-4q/available_instances", 4096, 0) == b"2\n"
        assert await t.read(f"{TYPES}/siov-1q/device_api", 4096, 0) == b"vfio-pci\n"
        u1 = str(uuid.uuid4())
        assert await t.write(f"{TYPES}/siov-4q/create", f"{u1}\n".encode(), 0) == 37
        vdev = st.vdcm.get(u1)
        assert len(vdev.adis) == 4 and vdev.pasid >= 1
        assert await t.listdir("bus/mdev/devices") == [u1]
        assert await t.readlink(f"bus/mdev/devices/{u1}") == f"../../../{PFDIR}/{u1}"
        assert await t.readlink(f"{PFDIR}/{u1}/mdev_type") == "../mdev_supported_types/siov-4q"
        assert await t.listdir(f"{TYPES}/siov-4q/devices") == [u1]
        assert await t.read(f"{TYPES}/siov-4q/available_instances", 4096, 0) == b"1\n"
        before = st.vdcm.usage()
        bad = [
            (f"{TYPES}/siov-1q/create", b"not-a-uuid\n", errno.EINVAL),
            (f"{TYPES}/siov-1q/create", u1.replace("-", "").encode(), errno.EINVAL),  # Python would take it
            (f"{TYPES}/siov-1q/create", f"{u1}\n".encode(), errno.EEXIST),
            (f"{TYPES}/siov-1q/create", f"{u1.upper()}".encode(), errno.EEXIST),
            (f"{TYPES}/siov-4q/create", f"{uuid.uuid4()}".encode(), 0),  # the last 4 ADIs
            (f"{TYPES}/siov-1q/create", f"{uuid.uuid4()}".encode(), errno.ENOSPC),
            (f"{TYPES}/nope-1q/create", f"{uuid.uuid4()}".encode(), errno.ENOENT),
            (f"{TYPES}/siov-1q/name", b"x", errno.EACCES),
        ]
        for path, data, err in bad:
            if err:
                assert await oserr(t.write(path, data, 0)) == err, (path, data)
            else:
                await t.write(path, data, 0)
        assert st.vdcm.usage().vdevs == before.vdevs + 1 and st.pf.free_adi_count() == 0
        assert await oserr(t.read(f"{TYPES}/siov-1q/create", 10, 0)) == errno.EACCES
        assert await oserr(t.write(f"bus/mdev/devices/{u1}/remove", b"yes", 0)) == errno.EINVAL
        await t.write(f"{PFDIR}/{u1}/remove", b"0\n", 0)  # 0: nothing happens
        await t.write(f"{PFDIR}/{u1}/remove", b"1\n", 0)
        assert u1 not in await t.listdir("bus/mdev/devices")
        assert await oserr(t.stat(f"bus/mdev/devices/{u1}")) == errno.ENOENT
        for v in st.vdcm.vdevs():
            await t.write(f"{PFDIR}/{v.uuid}/remove", b"1", 0)
        use = st.vdcm.usage()
        assert (use.vdevs, use.adis_in_use, use.pasids_in_use, use.switch_addrs_in_use) == (0, 0, 0, 0)

    run(body())


def test_config_space_attributes_read_live_and_write_with_byte_enables() -> None:
    async def body() -> None:
        st, t = await tree_of()
        cfg = await t.read(f"{PFDIR}/config", 4096, 0)
        assert len(cfg) == 4096 and cfg == await st.host.cfg_read(PF_BDF, 0, 4096)
        assert (await t.stat(f"{PFDIR}/config")).size == 4096
        vid = int.from_bytes(cfg[0:2], "little")
        assert await t.read(f"{PFDIR}/vendor", 4096, 0) == f"0x{vid:04x}\n".encode()
        assert await t.read(f"{PFDIR}/config", 3, 0x101) == cfg[0x101:0x104]
        assert await t.read(f"{PFDIR}/config", 16, 4090) == cfg[4090:]
        # a 2-byte write of COMMAND touches only COMMAND (Linux: one CfgWr with 2 byte enables)
        status = cfg[6:8]
        await t.write(f"{PFDIR}/config", b"\x00\x00", 4)
        after = await st.host.cfg_read(PF_BDF, 4, 4)
        assert after[:2] == b"\x00\x00" and after[2:] == status
        await t.write(f"{PFDIR}/config", cfg[4:6], 4)
        res = (await t.read(f"{PFDIR}/resource", 4096, 0)).decode().splitlines()
        assert len(res) == 13
        start, end, flags = (int(x, 16) for x in res[0].split())
        bar0 = st.pf.bar(0)
        assert (start, end - start + 1) == (bar0.addr, bar0.size) and flags & 0x200
        assert (await t.stat(f"{PFDIR}/resource0")).size == bar0.size
        assert (await t.stat(f"{PFDIR}/driver")).kind is Kind.LINK

    run(body())


def test_vdev_virtual_config_space_dump_is_lspci_format() -> None:
    async def body() -> None:
        st, t = await tree_of()
        u1 = str(uuid.uuid4())
        await t.write(f"{TYPES}/siov-1q/create", u1.encode(), 0)
        dump = (await t.read(f"bus/mdev/devices/{u1}/vconfig", 1 << 16, 0)).decode()
        ((_bdf, data),) = parse_lspci(dump).items()
        assert data == st.vdcm.get(u1).config.read(0, 4096)

    run(body())


# ---- the real tools on a FUSE mount ----------------------------------------------------------------
def _need_fuse_and(*pkgs: str) -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"no FUSE here: {reason}")
    left = debdeps.ensure(list(pkgs), quiet=True)
    if left:
        pytest.skip(f"Debian packages missing and not installable here: {' '.join(left)}")


async def tool(
    server: SysfsServer, st: Stack, cmd: Sequence[str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a real program against the mount while this (the simulation's) thread serves it."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    await server.bridge.serve(st.host.runtime, lambda: proc.poll() is not None, idle_wait_s=0.005, step_ns=10)
    out, err = proc.communicate()
    res = subprocess.CompletedProcess(list(cmd), proc.returncode, out, err)
    if check and res.returncode:
        raise AssertionError(f"{' '.join(cmd)} exited {res.returncode}: {err}{out}")
    return res


def test_real_lspci_setpci_and_mdevctl_on_the_fuse_tree(tmp_path: Path) -> None:
    _need_fuse_and("pciutils", "mdevctl")

    async def body() -> None:
        st, t = await tree_of(8)
        server = SysfsServer(t, tmp_path / "sys", SimBridge(timeout_s=30))
        await server.start(st.host.runtime)
        root = str(server.mountpoint)
        try:
            lspci = ["lspci", "-A", "linux-sysfs", "-O", f"sysfs.path={root}/bus/pci"]
            out = (await tool(server, st, [*lspci, "-vvv", "-nn"])).stdout
            assert "01:00.0" in out and "Kernel driver in use: siov" in out, out
            assert re.search(r"Designated Vendor-Specific: Vendor=8086 ID=0005 Rev=0 Len=24", out), out
            assert "Process Address Space ID (PASID)" in out, out
            assert re.search(r"Region 0: Memory at [0-9a-f]+ \(64-bit", out), out
            # setpci reads and writes through the tree: COMMAND's INTx Disable bit is set in the device
            setpci = ["setpci", "-A", "linux-sysfs", "-O", f"sysfs.path={root}/bus/pci", "-s", "01:00.0"]
            cmd = int((await tool(server, st, [*setpci, "COMMAND.w"])).stdout.strip(), 16)
            assert cmd & 0x6 == 0x6  # memory + bus master, set by the probe
            await tool(server, st, [*setpci, "COMMAND.w=0400:0400"])
            assert int.from_bytes(await st.host.cfg_read(PF_BDF, 4, 2), "little") == cmd | 0x400
            # echo > create / remove through the kernel VFS (shell redirection), errno on bad input
            u1 = str(uuid.uuid4())
            await tool(server, st, ["sh", "-c", f"echo {u1} > {root}/{TYPES}/siov-1q/create"])
            assert st.vdcm.get(u1).adis
            dup = await tool(server, st, ["python3", "-c", f"import os\nfd=os.open('{root}/{TYPES}/siov-1q/create',"
                                          f" os.O_WRONLY)\ntry: os.write(fd, b'{u1}')\nexcept OSError as e: "
                                          "print(e.errno)"])
            assert dup.stdout.strip() == str(errno.EEXIST)
            await tool(server, st, ["sh", "-c", f"echo 1 > {root}/bus/mdev/devices/{u1}/remove"])
            assert st.vdcm.usage().vdevs == 0
            # mdevctl in a private mount namespace where the tree is /sys
            if shutil.which("unshare") is None:
                pytest.skip("unshare (util-linux) missing")
            ns = ["unshare", "-m", "sh", "-c"]
            types = await tool(server, st, [*ns, f"mount --bind {root} /sys && mdevctl types"], check=False)
            if types.returncode and "mount" in types.stderr:
                pytest.skip(f"no private mount namespace here: {types.stderr.strip()}")
            assert "siov-4q" in types.stdout and "Available instances: 2" in types.stdout, types
            u2 = str(uuid.uuid4())
            await tool(server, st, [*ns, f"mount --bind {root} /sys && mdevctl start -u {u2} -p {PF} -t siov-4q"])
            assert len(st.vdcm.get(u2).adis) == 4
            listed = await tool(server, st, [*ns, f"mount --bind {root} /sys && mdevctl list"])
            assert f"{u2} {PF} siov-4q" in listed.stdout, listed
            await tool(server, st, [*ns, f"mount --bind {root} /sys && mdevctl stop -u {u2}"])
            assert st.vdcm.usage().vdevs == 0 and st.vdcm.usage().pasids_in_use == 0
        finally:
            await server.stop(st.host.runtime)
        assert not os.path.ismount(server.mountpoint)

    asyncio.run(body())
