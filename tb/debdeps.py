"""Debian packages the project uses at run time, installed by the bootstrap (not by hand).

``python3 tb/debdeps.py`` (what ``make venv`` runs) installs whichever of :data:`PACKAGES` is
missing with ``apt-get`` when it runs as root on Debian, as ``tb/runner.py`` does for
``liblz4-dev``. Elsewhere it prints what is missing and carries on: the tests that need a
package skip with a message that names it.

| package | gives | used by |
|---|---|---|
| ``pciutils`` | ``lspci``, ``setpci`` | ``lspci -F`` of config dumps, ``lspci``/``setpci`` on the live sysfs tree |
| ``mdevctl`` | ``mdevctl`` 1.2.0 | the mdev bus of the live sysfs tree |
| ``fuse3`` | ``libfuse3.so.3`` (+ ``fusermount3``) | mfusepy, which serves the live sysfs tree |
| ``lcov`` | ``genhtml`` | the HTML report of the RTL code coverage (``make cov``, tb/rtlcov.py) |

Only the standard library is used here: it runs before the virtualenv exists.
"""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import sys

#: package -> how to tell it is installed (an executable on PATH, or "lib:<name>" for a library)
PACKAGES: dict[str, tuple[str, ...]] = {
    "pciutils": ("lspci", "setpci"),
    "mdevctl": ("mdevctl",),
    "fuse3": ("lib:fuse3", "fusermount3"),
    "lcov": ("genhtml",),
}


def _present(probe: str) -> bool:
    if probe.startswith("lib:"):
        return ctypes.util.find_library(probe[4:]) is not None
    return shutil.which(probe) is not None


def missing(packages: list[str] | None = None) -> list[str]:
    """The packages of ``packages`` (default: all of :data:`PACKAGES`) that are not installed."""
    return [p for p in (packages or list(PACKAGES)) if not all(_present(x) for x in PACKAGES[p])]


def ensure(packages: list[str] | None = None, *, quiet: bool = False) -> list[str]:
    """Install what is missing (root + apt-get only); returns what is still missing afterwards."""
    todo = missing(packages)
    if not todo or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return todo
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *todo]
    if not quiet:
        print(f"debdeps: apt-get install {' '.join(todo)}", file=sys.stderr)
    if subprocess.run(cmd, capture_output=True, check=False, env=env, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False, env=env, timeout=900)
        subprocess.run(cmd, capture_output=True, check=False, env=env, timeout=900)
    return missing(packages)


def main(argv: list[str]) -> int:
    left = ensure(argv or None)
    if left:
        print(f"debdeps: not installed (need root + apt-get): {' '.join(left)}; the tests that use them skip",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
