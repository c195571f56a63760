# Set-up and main jobs. `make test` and `make demo` work on a fresh machine with only Python
# (on Debian/Ubuntu: sudo apt-get install -y make python3-venv; scripts/check-python.sh says so).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel installed here; a user with a GPU installs their own torch build into
# $(VENV) first (or sets TORCH_SPEC) and it is kept.
TORCH_SPEC ?= torch==2.13.0
DATA ?=
OUT ?= demo-out

.PHONY: install test demo bench-serve clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	@test -x $(PY) || sh scripts/check-python.sh "$(PYTHON)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[all,test]"
	touch $@

test: install
	sh scripts/apt-install.sh chromium chromium "the browser test of the search page"
	sh scripts/apt-install.sh g++ g++ "torch.compile's kernels in bf16 CPU training"
	$(PY) -m pytest -q

demo: install
	$(VENV)/bin/infomax demo $(if $(DATA),--data $(DATA)) --out $(OUT)

bench-serve: install
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) benchmarks/bench_serve.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
