"""Project-wide pytest options: ``--seeds`` for the seeded random regression (tests/system/test_regress.py)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--seeds", default="", help="regression seeds: 'N' (one seed), 'A:N' (N seeds from A) or "
                     "'a,b,c'; default: the fixed seeds make test runs (tests/system/test_regress.py)")


def parse_seeds(spec: str) -> list[int]:
    spec = spec.strip()
    if ":" in spec:
        first, _, count = spec.partition(":")
        return list(range(int(first), int(first) + int(count)))
    return [int(s) for s in spec.split(",") if s.strip()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "regress_seed" in metafunc.fixturenames:
        from tests.system.test_regress import DEFAULT_SEEDS

        spec = metafunc.config.getoption("--seeds")
        seeds = parse_seeds(spec) if spec else list(DEFAULT_SEEDS)
        metafunc.parametrize("regress_seed", seeds, ids=[f"seed{s}" for s in seeds])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per failing regression seed: the command that reproduces it."""
    seeds = sorted({int(r.nodeid.split("[seed", 1)[1].split("-", 1)[0])
                    for r in terminalreporter.stats.get("failed", [])
                    if "test_regress.py::test_regress[seed" in r.nodeid})
    if seeds:
        terminalreporter.section("failing regression seeds")
        for s in seeds:
            terminalreporter.write_line(f"seed {s}: make regress SEED={s}")
