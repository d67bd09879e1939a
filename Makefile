# Two entry points: `make demo` (the main job) and `make test` (the kit's own tests).
PYTHON ?= python3
VENV   ?= .venv
TORCH_VERSION   ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
BIN    := $(VENV)/bin

.PHONY: demo test venv clean

# torch first, and only its CPU build (+cpu), never the multi-GB CUDA one: from the local wheels and
# indexes pip is configured with when they have it (offline), else from PyTorch's CPU index; macOS
# wheels are CPU-only as they come.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==$(TORCH_VERSION)+cpu" 2>/dev/null \
	  || $(BIN)/pip install --quiet "torch==$(TORCH_VERSION)+cpu" --extra-index-url "$(TORCH_CPU_INDEX)" \
	  || { [ "$$(uname)" = Darwin ] && $(BIN)/pip install --quiet "torch==$(TORCH_VERSION)"; }
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/python -m autograder.demo

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
