# `make test` needs only Python 3.11+: it creates .venv with pytest when missing.
PYTHON ?= python3
VENV := .venv

.PHONY: test bench clean

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
