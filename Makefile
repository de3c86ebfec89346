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
# where the live sysfs tree (PCI device + mdev bus) is mounted while the simulation runs; none = off
SYSFS       ?= build/sim/sysfs
# make shell: VDEVs the scenario creates before the shell session (0: only bring-up, all ADIs free)
SHELL_VDEVS ?= 0
export WAVES

.PHONY: all venv sim shell test test-all lint synth regs check-gen cfgdump bench cov mutants clean distclean

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
		--sysfs '$(SYSFS)'

## the simulation stays up with its sysfs tree mounted at $(SYSFS) for lspci/setpci/mdevctl; Ctrl-C ends it
shell: $(STAMP)
	@$(PY) -m siov_sim.tb.sim --interactive --vdevs '$(SHELL_VDEVS)' --size '$(SIZE)' --seed '$(SEED)' \
		--num-adi '$(NUM_ADI)' --link '$(LINK)' --sysfs '$(SYSFS)'

## fast regression (model, sw, RTL module and system tests; not the slow ones)
test: $(STAMP)
	rm -rf build/cov
	$(PY) -m pytest -m "not slow" -n $(JOBS) $(PYTEST_ARGS)

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
	@$(PY) -m siov_sim.tb.cfgdump --out build/cfgdump.txt && cat build/cfgdump.txt

## all benchmarks; each prints numbers and writes build/bench/<name>.json; then the PNG figures
bench: $(STAMP)
	@set -e; mkdir -p build/bench; for b in tests/bench/bench_*.py; do echo "== $$b"; $(PY) $$b; done; \
	  $(PY) tests/bench/plots.py

cov: $(STAMP)
	$(PY) -m siov_sim.tb.coverage_merge

## planted RTL bugs (ifdef MUTANT_*): which test of make test catches each; build/mutants.json
mutants: $(STAMP)
	$(PY) -m siov_sim.tb.mutants $(MUTANTS)

clean:
	rm -rf sim_build build .pytest_cache .mypy_cache .ruff_cache

distclean: clean
	rm -rf $(VENV)
