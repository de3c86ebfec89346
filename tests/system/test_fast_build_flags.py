"""The fast link's build variants (tb/runner.py): a PGO build is the same Verilated model.

GCC PGO (``make sim PGO=1``) only works if the instrumented twin and the final build compile the
same Verilator output: the profiles are matched object by object. These checks need no build; the
benchmark (tests/bench/bench_cosim.py) runs both builds and replays the PGO run on its own objects.
"""

from __future__ import annotations

import pytest

from siov_sim.tb import runner


def _strip_pgo_link(args: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(args):
        if args[i : i + 2] == ["-LDFLAGS", "-fprofile-generate"]:
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out


@pytest.mark.parametrize("waves", [False, True])
def test_pgo_builds_verilate_the_same(waves: bool) -> None:
    fast = runner.fast_build_args(waves, "fast")
    gen = runner.fast_build_args(waves, "pgo-gen")
    use = runner.fast_build_args(waves, "pgo")
    assert use == fast  # Verilator sees the same options: the same C++
    assert gen != fast and _strip_pgo_link(gen) == fast  # only the profiling runtime is linked in


def test_pgo_compiler_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIOV_FAST_OPT", raising=False)
    opt = {f: dict(o.split("=", 1) for o in runner.fast_opt(f)) for f in ("fast", "pgo-gen", "pgo")}
    assert opt["fast"]["OPT_FAST"] == "-O3 -march=native"
    assert opt["pgo-gen"]["OPT_FAST"].startswith("-O3 -march=native ")
    assert "-fprofile-generate" in opt["pgo-gen"]["OPT_FAST"].split()
    assert "-fprofile-use" in opt["pgo"]["OPT_FAST"].split()
    assert "-fprofile-generate" not in opt["pgo"]["OPT_FAST"].split()
    for f in ("pgo-gen", "pgo"):  # only the fast (model evaluation) objects differ
        assert {k: v for k, v in opt[f].items() if k != "OPT_FAST"} == {
            k: v for k, v in opt["fast"].items() if k != "OPT_FAST"
        }


def test_pgo_refuses_coverage_and_unknown_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIOV_RTL_COV", "1")
    with pytest.raises(ValueError, match="PGO"):
        runner.build_fast({"NumAdi": 4}, flags="pgo")
    monkeypatch.delenv("SIOV_RTL_COV")
    with pytest.raises(ValueError, match="flags must be one of"):
        runner.build_fast({"NumAdi": 4}, flags="O9")
