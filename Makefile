# `make test` needs only Python 3.11+: it creates .venv with pytest when missing.
PYTHON ?= python3
VENV := .venv

.PHONY: test bench bench-20 bench-venv clean

# The two test files run side by side (the fault loops mostly wait on processes they start); the fault tests'
# report prints after the others'. PYTHONDONTWRITEBYTECODE= lets pytest keep its rewritten test modules.
test: $(VENV)/bin/pytest
	@export PYTHONDONTWRITEBYTECODE=; log=$$(mktemp); \
	$(VENV)/bin/python -m pytest -q test_faults.py >"$$log" 2>&1 & faults=$$!; \
	$(VENV)/bin/python -m pytest -q test_paper.py; status=$$?; \
	wait $$faults; faults_status=$$?; echo; cat "$$log"; rm -f "$$log"; \
	[ $$status -eq 0 ] && [ $$faults_status -eq 0 ]

$(VENV)/bin/pytest:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q "pytest>=8,<10"

clean:
	rm -rf $(VENV) .pytest_cache __pycache__ data

bench:
	$(PYTHON) bench_paper.py

# Issue 20's rows alone: the feed, the crossover through the API, and backtest beside backtesting.py.
bench-20:
	$(PYTHON) bench_paper.py issue20

# backtesting.py for bench rows 17 and 18 only (they are skipped without it): never a dependency of paper or
# its tests. The same python as the bench, so a strategy's float sums round alike on both sides.
bench-venv: .venv-bench/bin/python

.venv-bench/bin/python:
	$(PYTHON) -m venv .venv-bench && .venv-bench/bin/python -m pip install -q backtesting==0.6.5 \
		|| { rm -rf .venv-bench; exit 1; }
