# Two commands from a fresh clone: `make demo` (the main job) and `make test` (the test suite).
# Both create or reuse .venv; the CPU build of torch is installed first so that the
# package's torch range does not pull a CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vidiff-installed

.PHONY: demo test install clean bench-unet

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vidiff demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(BENCH_VENV) runs

# U-Net speed/memory against make-a-video-pytorch and video-diffusion-pytorch (docs/benchmarks.md).
# The peers live in their own venv so they never touch the project's dependencies.
BENCH_VENV ?= .bench-venv
$(BENCH_VENV)/.installed:
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install torch==2.13.0 make-a-video-pytorch video-diffusion-pytorch einops pyyaml
	$(BENCH_VENV)/bin/python -m pip install -e . --no-deps
	touch $@

bench-unet: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python scripts/bench_unet.py
