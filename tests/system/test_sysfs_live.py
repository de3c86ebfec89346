"""Real lspci, setpci and mdevctl against the RTL, through the live sysfs tree of ``make shell``.

Starts ``python -m siov_sim.tb.sim --interactive`` (what ``make shell`` runs; ep_top at NumAdi 16,
the build ``make sim`` and test_siov_stack use) with the tree mounted in a temporary directory,
then does what a user types in another shell: ``lspci -vvv`` (config space read live with CfgRd
TLPs: the SIOV DVSEC and the PASID capability as the RTL has them), ``setpci`` (a CfgWr that the
RTL applies), ``echo <uuid> > .../create`` and ``echo 1 > .../remove`` with Linux's errno on bad
input, ``mdevctl types/start/list/stop`` in a private mount namespace where the tree is ``/sys``,
and ``lspci -F`` on a VDEV's virtual config space. SIGTERM ends the simulation, which tears down
what is left and unmounts. Skips, saying why, only where FUSE, the tools or namespaces are missing.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from siov_sim.sw.sysfs import unavailable
from siov_sim.sw.sysfs.fuse import force_unmount, is_mounted
from siov_sim.tb import debdeps
from siov_sim.tb.runner import ROOT

pytestmark = pytest.mark.system
PF = "0000:01:00.0"
NUM_ADI = 16  # the build make sim and test_siov_stack use


def sh(cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120, check=False)
    if check and res.returncode:
        raise AssertionError(f"{cmd!r} exited {res.returncode}: {res.stderr}{res.stdout}")
    return res


def write_errno(path: Path, data: str) -> int:
    """write(2) as echo does it; 0 on success, else the errno."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as exc:
        return exc.errno or -1
    try:
        os.write(fd, data.encode())
    except OSError as exc:
        return exc.errno or -1
    finally:
        os.close(fd)
    return 0


def test_lspci_setpci_mdevctl_on_the_live_rtl(tmp_path: Path) -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"no FUSE here: {reason}")
    left = debdeps.ensure(["pciutils", "mdevctl"], quiet=True)
    if left:
        pytest.skip(f"Debian packages missing and not installable here: {' '.join(left)}")
    root = tmp_path / "sys"
    out = tmp_path / "out"
    # a stray SIOV_SIM_OUT in the caller's environment must not redirect the report away from --out
    # (cocotb's runner lays os.environ over the runner's extra_env; tb/runner.py puts ours on top)
    env = {**os.environ, "SIOV_SIM_OUT": str(tmp_path / "elsewhere")}
    log = (tmp_path / "sim.log").open("w")
    sim = subprocess.Popen(
        [sys.executable, "-m", "siov_sim.tb.sim", "--interactive", "--vdevs", "0", "--num-adi", str(NUM_ADI),
         "--sysfs", str(root), "--out", str(out)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 900  # a first Verilator build takes a minute or two
        while "sysfs tree live" not in (tmp_path / "sim.log").read_text():
            assert sim.poll() is None, (tmp_path / "sim.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "simulation did not come up"
            time.sleep(0.5)
        types = root / f"class/mdev_bus/{PF}/mdev_supported_types"
        lspci = f"lspci -A linux-sysfs -O sysfs.path={root}/bus/pci"
        setpci = f"setpci -A linux-sysfs -O sysfs.path={root}/bus/pci -s 01:00.0"

        # lspci -vvv: everything read live from the RTL's config space
        text = sh(f"{lspci} -vvv -nn").stdout
        assert re.search(r"01:00.0 System peripheral \[0880\]: Device \[1dea:5105\]", text), text
        assert re.search(r"Designated Vendor-Specific: Vendor=8086 ID=0005 Rev=0 Len=24", text), text
        assert re.search(r"PASIDCap: Exec- Priv\+, Max PASID Width: 14", text), text
        assert re.search(r"PASIDCtl: Enable\+", text), text  # enabled by the PF driver's probe
        assert re.search(r"MSI-X: Enable\+ Count=8", text), text
        assert re.search(r"Region 0: Memory at [0-9a-f]+ \(64-bit, non-prefetchable\) \[size=1M\]", text), text
        assert "Kernel driver in use: siov" in text, text

        # setpci: a CfgWr the RTL applies (PASID Control: Privileged Mode Enable off, then on again)
        assert sh(f"{setpci} ECAP_PASID+6.w").stdout.strip() == "0005"
        sh(f"{setpci} ECAP_PASID+6.w=0000:0004")
        assert sh(f"{setpci} ECAP_PASID+6.w").stdout.strip() == "0001"
        assert re.search(r"PASIDCtl: Enable\+ Exec- Priv-", sh(f"{lspci} -vvv").stdout)
        sh(f"{setpci} ECAP_PASID+6.w=0004:0004")
        assert sh(f"{setpci} ECAP_PASID+6.w").stdout.strip() == "0005"

        # the mdev bus: create / remove with the shell, Linux's errno on bad input
        u1 = str(uuid.uuid4())
        sh(f"echo {u1} > {types}/siov-4q/create")
        assert (root / f"bus/mdev/devices/{u1}").is_dir()
        assert os.readlink(root / f"bus/mdev/devices/{u1}/mdev_type") == "../mdev_supported_types/siov-4q"
        pasid = int((root / f"bus/mdev/devices/{u1}/pasid").read_text())
        assert pasid >= 1 and (root / f"bus/mdev/devices/{u1}/adis").read_text().count(",") == 3
        assert (types / "siov-4q/available_instances").read_text() == "3\n"
        assert write_errno(types / "siov-1q/create", "no-uuid\n") == errno.EINVAL
        assert write_errno(types / "siov-1q/create", u1) == errno.EEXIST
        assert write_errno(types / "bogus-2q/create", str(uuid.uuid4())) == errno.ENOENT
        for _ in range(3):
            sh(f"echo {uuid.uuid4()} > {types}/siov-4q/create")  # 16 ADIs used up
        assert write_errno(types / "siov-1q/create", str(uuid.uuid4())) == errno.ENOSPC
        assert (types / "siov-1q/available_instances").read_text() == "0\n"
        dump = root / f"bus/mdev/devices/{u1}/vconfig"  # the VDEV's virtual config space
        vtext = sh(f"lspci -F {dump} -vvv").stdout
        assert re.search(r"Device 1dea:5106", vtext) and re.search(r"MSI-X: Enable- Count=4", vtext), vtext
        for d in os.listdir(root / "bus/mdev/devices"):
            sh(f"echo 1 > {root}/bus/mdev/devices/{d}/remove")
        assert os.listdir(root / "bus/mdev/devices") == []
        assert (types / "siov-1q/available_instances").read_text() == "16\n"

        # mdevctl 1.2.0 reads /sys/class/mdev_bus and /sys/bus/mdev/devices: the tree is /sys in a
        # private mount namespace
        if shutil.which("unshare") is None:
            pytest.skip("unshare (util-linux) is missing")
        ns = f"unshare -m sh -c 'mount --bind {root} /sys && "
        probe = sh(ns + "true'", check=False)
        if probe.returncode:
            pytest.skip(f"no private mount namespaces here: {probe.stderr.strip()}")
        listing = sh(ns + "mdevctl types'").stdout
        assert f"{PF}\n  siov-1q\n    Available instances: 16\n    Device API: vfio-pci\n    Name: SIOV-1Q" in listing
        u2 = str(uuid.uuid4())
        sh(ns + f"mdevctl start -u {u2} -p {PF} -t siov-1q'")
        assert (root / f"bus/mdev/devices/{u2}").is_dir()
        assert f"{u2} {PF} siov-1q manual" in sh(ns + "mdevctl list'").stdout
        bad = sh(ns + f"mdevctl start -u {u2} -p {PF} -t siov-1q'", check=False)
        assert bad.returncode and "already exists" in bad.stderr, bad
        sh(ns + f"mdevctl stop -u {u2}'")
        assert not (root / f"bus/mdev/devices/{u2}").exists()
        sh(f"echo {uuid.uuid4()} > {types}/siov-1q/create")  # left for the simulation to tear down
    finally:
        if sim.poll() is None:
            os.killpg(sim.pid, signal.SIGTERM)
        try:
            sim.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(sim.pid, signal.SIGKILL)
            sim.wait(30)
        log.close()
        if is_mounted(root):
            force_unmount(root)
    text = (tmp_path / "sim.log").read_text()
    assert sim.returncode == 0, text[-3000:]
    assert not (tmp_path / "elsewhere").exists()
    report = (out / "report.txt").read_text()
    assert "left_over={'vdevs': 0, 'adis_in_use': 0, 'pasids_in_use': 0" in report, report
    assert not is_mounted(root)
