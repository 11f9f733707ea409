# `make test` needs only Python 3.11+: it creates .venv with pytest when missing.
PYTHON ?= python3
VENV := .venv

.PHONY: test bench clean

test: $(VENV)/bin/pytest
	$(VENV)/bin/python -m pytest -q

$(VENV)/bin/pytest:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q "pytest>=8,<10"

clean:
	rm -rf $(VENV) .pytest_cache __pycache__ data

bench:
	$(PYTHON) bench_paper.py
