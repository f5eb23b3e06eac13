# The two commands of the README, each doing its own set-up on a fresh machine:
#   make demo   - install into .venv, run the whole pipeline on the embedded demo preset
#   make test   - install into .venv (with test extras), run the test suite
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
BIN := $(VENV)/bin
# torch is pinned to the pair that imports on x86-64 Python 3.11 machines without a GPU (and on the GPU ones)
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test install clean readme-numbers

$(BIN)/pblf: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/pblf

demo: install
	$(BIN)/pblf run demo -- --cores $(CORES)
	$(BIN)/pblf run demo -- --cores $(CORES) --report results/demo/report.html

test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

# every number the README and docs/*.md quote from a run against its committed source (also a test: tests/test_readme.py)
readme-numbers: install
	$(BIN)/python benchmarks/readme_numbers.py README.md docs/*.md

clean:
	rm -rf results logs .snakemake
