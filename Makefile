# make demo  - run the example cleanup DAG end to end on a local HelpCrunch stand-in (Airflow 3.3)
# make test  - ruff and mypy, then the whole suite on Airflow 3.3 and on Airflow 2.11 (packaging included)
# make bench - throughput against the stand-in, side by side with what people write instead and the watcher with real Airflow processes (~27 min)
# Each target creates the virtualenv it needs under .venv/ on first use.

PYTHON ?= python3
# The newest Python on the machine runs the suite on the newest Airflow; PYTHON (the oldest supported, 3.11)
# runs it on the oldest Airflow. Where no newer Python exists, PYTHON runs both.
ifeq ($(origin PYTHON_NEWEST), undefined)
PYTHON_NEWEST := $(or $(shell for p in python3.14 python3.13 python3.12 \
	$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && command -v $$p && break; done),$(PYTHON))
endif
AIRFLOW_NEW ?= 3.3.2
AIRFLOW_OLD ?= 2.11.2
VENV_NEW := .venv/airflow-$(AIRFLOW_NEW)
VENV_OLD := .venv/airflow-$(AIRFLOW_OLD)
VENV_BENCH := .venv/bench-airflow-$(AIRFLOW_NEW)
BENCH_EXTRAS := apache-airflow-providers-http matplotlib
PYTEST_ARGS ?=
# uv builds the virtualenvs (in seconds where pip takes minutes); it is bootstrapped into its own venv here.
UV_VERSION ?= >=0.9,<1
UV := .venv/uv/bin/uv

.PHONY: demo test test-new test-old lint typecheck format venvs bench clean

demo: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/python -m scripts.run_demo

test: lint typecheck test-new test-old

test-new: $(VENV_NEW)/.installed
	@echo "== pytest on Airflow $(AIRFLOW_NEW)"
	$(VENV_NEW)/bin/python -m pytest $(PYTEST_ARGS)

test-old: $(VENV_OLD)/.installed
	@echo "== pytest on Airflow $(AIRFLOW_OLD)"
	$(VENV_OLD)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/ruff check .
	$(VENV_NEW)/bin/ruff format --check .

typecheck: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/mypy

format: $(VENV_NEW)/.installed
	$(VENV_NEW)/bin/ruff check --fix .
	$(VENV_NEW)/bin/ruff format .

venvs: $(VENV_NEW)/.installed $(VENV_OLD)/.installed

bench: $(VENV_BENCH)/.installed
	$(VENV_BENCH)/bin/python -m benchmarks.bench $(BENCH_ARGS)

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed, $(PYTHON) is " + sys.version.split()[0])'
	@echo "== bootstrapping uv into .venv/uv"
	@rm -rf .venv/uv
	@$(PYTHON) -m venv .venv/uv
	@.venv/uv/bin/python -m pip install "uv$(UV_VERSION)" > .venv/uv.log 2>&1 || { cat .venv/uv.log; exit 1; }

# The benchmark's own virtualenv: the peers it compares with (HttpOperator) and the chart stay out of the
# test environments.
$(VENV_BENCH)/.installed: pyproject.toml $(UV)
	@echo "== creating $(VENV_BENCH) (output in $(VENV_BENCH).log)"
	@rm -rf $(VENV_BENCH)
	@$(UV) venv --quiet --seed --python "$(PYTHON_NEWEST)" $(VENV_BENCH) > $(VENV_BENCH).log 2>&1 \
		|| { cat $(VENV_BENCH).log; exit 1; }
	@$(UV) pip install --python $(VENV_BENCH)/bin/python "apache-airflow==$(AIRFLOW_NEW)" -e ".[test,redis]" \
		$(BENCH_EXTRAS) >> $(VENV_BENCH).log 2>&1 || { tail -n 60 $(VENV_BENCH).log; exit 1; }
	@touch $@

$(VENV_NEW)/.installed: VENV_PYTHON = $(PYTHON_NEWEST)
$(VENV_OLD)/.installed: VENV_PYTHON = $(PYTHON)

.venv/airflow-%/.installed: pyproject.toml $(UV)
	@echo "== creating .venv/airflow-$* (apache-airflow==$* on $$($(VENV_PYTHON) -V 2>&1); output in .venv/airflow-$*.log)"
	@rm -rf .venv/airflow-$*
	@$(UV) venv --quiet --seed --python "$(VENV_PYTHON)" .venv/airflow-$* > .venv/airflow-$*.log 2>&1 \
		|| { cat .venv/airflow-$*.log; exit 1; }
	@$(UV) pip install --python .venv/airflow-$*/bin/python "apache-airflow==$*" -e ".[test,redis]" \
		>> .venv/airflow-$*.log 2>&1 || { tail -n 60 .venv/airflow-$*.log; exit 1; }
	@touch $@

clean:
	rm -rf .venv .demo .pytest_cache .ruff_cache .mypy_cache dist
