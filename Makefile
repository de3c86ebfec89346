# siov-sim — every target bootstraps .venv first (python3, g++, make and perl are all it needs).
SHELL       := /bin/bash
PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
# Debian packages used at run time (pciutils, mdevctl, fuse3): tb/debdeps.py, apt-get when root
DEBSTAMP    := $(VENV)/.debian-$(shell cksum < tb/debdeps.py | cut -d' ' -f1)
JOBS        ?= auto
PYTEST_ARGS ?=
# make sim knobs (see README): number of VDEVs, bytes per transfer, FST waves
VDEVS       ?= 4
SIZE        ?= 4096
WAVES       ?= 0
SEED        ?= 1
NUM_ADI     ?= 16
# fast: DMA data path in C++ (tb/fast), proven equal to accurate by tests/system/test_link_modes.py;
# accurate: the cocotbext-pcie link on every hop, the source of every simulated-time figure
LINK        ?= fast
# 1: the fast link's model built with GCC profile-guided optimisation (tb/fast/pgo_train.py trains
# it; the first run of a parameter set builds twice, ~1 min more); make bench measures both builds
PGO         ?= 0
# hard IP in front of the endpoint: none = ep_top on the generic TLP streams (LINK applies);
# ptile = ep_ptile_top (rtl/hip) behind cocotbext-pcie's Intel P-tile model, extended in tb/pcie/ptile_ext.py
HIP         ?= none
# where the live sysfs tree (PCI device + mdev bus) is mounted while the simulation runs; none = off
SYSFS       ?= build/sim/sysfs
# make test SHARD=k/n: run shard k of n (pytest-split, balanced by the committed tests/durations.json);
# each shard builds under sim_build/shard-k-of-n, so shards on one machine do not share build locks
SHARD       ?=
# make regress: SEEDS seeds starting at SEED0 (or SEED=<s> for exactly one); make cov: what it runs
SEEDS       ?= 10
SEED0       ?= 1
COV_TESTS   ?= tests/rtl tests/system
# make cov: 1 = line + branch coverage builds, toggle = also toggle coverage (slower)
RTL_COV     ?= 1
# make shell: VDEVs the scenario creates before the shell session (0: only bring-up, all ADIs free)
SHELL_VDEVS ?= 0
# make migrate: migrations A -> B -> A ..., the VM's mdev type, guest RAM (KiB), migration link (Gb/s)
MIGRATIONS  ?= 6
MIG_TYPE    ?= siov-4q
MIG_RAM     ?= 256
MIG_GBPS    ?= 10
export WAVES

.PHONY: all venv sim shell migrate test test-all lint synth regs check-gen cfgdump bench cov cov-report mutants regress durations \
	clean distclean help

SPLIT_ARGS  := $(if $(SHARD),--splits $(word 2,$(subst /, ,$(SHARD))) --group $(word 1,$(subst /, ,$(SHARD))) \
	--durations-path tests/durations.json,)
SHARD_ENV   := $(if $(SHARD),SIOV_SIM_BUILD=$(CURDIR)/sim_build/shard-$(subst /,-of-,$(SHARD)),)

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml $(DEBSTAMP)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

$(DEBSTAMP): tb/debdeps.py
	@$(PYTHON) tb/debdeps.py
	@mkdir -p $(VENV); rm -f $(VENV)/.debian-*; touch $@

## the main job: bring-up + SIOV demo through the real RTL, prints a report, writes build/sim/report.json
sim: $(STAMP)
	@$(PY) -m siov_sim.tb.sim --vdevs '$(VDEVS)' --size '$(SIZE)' --seed '$(SEED)' --num-adi '$(NUM_ADI)' --link '$(LINK)' \
		--hip '$(HIP)' --sysfs '$(SYSFS)' --pgo '$(PGO)'

## the simulation stays up with its sysfs tree mounted at $(SYSFS) for lspci/setpci/mdevctl; Ctrl-C ends it
shell: $(STAMP)
	@$(PY) -m siov_sim.tb.sim --interactive --vdevs '$(SHELL_VDEVS)' --size '$(SIZE)' --seed '$(SEED)' \
		--num-adi '$(NUM_ADI)' --link '$(LINK)' --sysfs '$(SYSFS)'

## live migration of a VM with a SIOV VDEV between two simulated hosts (two RTL endpoints), under
## checked traffic; prints a report, writes build/migrate/report.json
migrate: $(STAMP)
	@$(PY) -m siov_sim.tb.migrate --migrations '$(MIGRATIONS)' --seed '$(SEED)' --type '$(MIG_TYPE)' \
		--ram '$(MIG_RAM)' --gbps '$(MIG_GBPS)'

## fast regression (model, sw, RTL module and system tests, regress seed 1; not the slow ones);
## SHARD=k/n runs shard k of n (pytest-split), e.g. CI on 4 runners: make test SHARD=1/4 ... SHARD=4/4
test: $(STAMP)
	rm -rf build/cov
	$(SHARD_ENV) $(PY) -m pytest -m "not slow" -n $(JOBS) $(SPLIT_ARGS) $(PYTEST_ARGS)

## re-measure tests/durations.json (what SHARD balances on): runs the whole fast regression
durations: $(STAMP)
	$(PY) -m pytest -m "not slow" -n $(JOBS) --store-durations --durations-path tests/durations.json $(PYTEST_ARGS)

## seeded constrained-random system regression: SEEDS seeds from SEED0, or SEED=<s> alone;
## a failing seed prints the command that reproduces it
regress: $(STAMP)
	$(PY) -m pytest tests/system/test_regress.py -m "" -n $(JOBS) --seeds '$(if $(filter command line,$(origin SEED)),$(SEED),$(SEED0):$(SEEDS))' $(PYTEST_ARGS)

test-all: $(STAMP)
	rm -rf build/cov
	$(PY) -m pytest -n $(JOBS) $(PYTEST_ARGS)

## Verilator -Wall lint, Yosys read + synth smoke, ruff, mypy --strict on model/ and sw/
lint: $(STAMP)
	$(PY) -m siov_sim.tb.lint

synth: $(STAMP)
	$(PY) -m siov_sim.tb.lint --synth-only --full

## regenerate everything derived from the SystemRDL register source
regs: $(STAMP)
	$(PY) -m siov_sim.tb.regs

check-gen: regs
	git diff --exit-code -- rtl/gen sw/regs docs/datasheet.md

## whole 4 KiB config space of the simulated RTL, in `lspci -xxxx` format (feed it to lspci -F)
cfgdump: $(STAMP)
	@$(PY) -m siov_sim.tb.cfgdump --out build/cfgdump.txt --hip '$(HIP)' && cat build/cfgdump.txt

## all benchmarks; each prints numbers and writes build/bench/<name>.json; then the PNG figures
bench: $(STAMP)
	@set -e; mkdir -p build/bench; for b in tests/bench/bench_*.py; do echo "== $$b"; $(PY) $$b; done; \
	  $(PY) tests/bench/plots.py

## RTL code coverage (Verilator line + branch, own builds in sim_build/cov) and functional coverage
## of COV_TESTS: lcov build/rtlcov/merged.info, HTML build/rtlcov/html, holes and waivers listed
cov: $(STAMP)
	rm -rf build/cov build/rtlcov
	SIOV_RTL_COV=$(RTL_COV) $(PY) -m pytest -m "not slow" -n $(JOBS) $(PYTEST_ARGS) $(COV_TESTS); st=$$?; \
	  $(PY) -m siov_sim.tb.coverage_merge || st=1; exit $$st

## the coverage report of the last `make cov` (or `make test` for functional coverage) without running
cov-report: $(STAMP)
	$(PY) -m siov_sim.tb.coverage_merge

## planted RTL bugs (ifdef MUTANT_*): which test of make test catches each; build/mutants.json
mutants: $(STAMP)
	$(PY) -m siov_sim.tb.mutants $(MUTANTS)

help:
	@awk '/^## /{sub(/^## /,""); h = h (h ? "\n  " : "") $$0; next} /^[a-z-]+:/{if (h) printf "%-12s %s\n", $$1, h; h=""} \
	  !/^## /{if (!/^[a-z-]+:/) h=""}' $(MAKEFILE_LIST)

clean:
	rm -rf sim_build build .pytest_cache .mypy_cache .ruff_cache

distclean: clean
	rm -rf $(VENV)
