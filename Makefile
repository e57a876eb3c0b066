# The README's two commands: `make demo` and `make test`. Both set up .venv when needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup clean-venv benchmarks

$(STAMP): requirements.txt setup.py scripts/setup_env.sh
	VENV=$(VENV) bash scripts/setup_env.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m dense_descriptor_grasp.demo

test: $(STAMP)
	$(PY) -m pytest -q test

benchmarks: $(STAMP)
	$(PY) -m benchmarks.run_all

clean-venv:
	rm -rf $(VENV)
