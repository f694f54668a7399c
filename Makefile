# make demo  - run the example cleanup DAG end to end on a local HelpCrunch stand-in (Airflow 3.3)
# make test  - ruff and mypy, then the whole suite on Airflow 3.3 and on Airflow 2.11 (packaging included)
# make bench - throughput against the stand-in, side by side with what people write instead (~12 min)
# Each target creates the virtualenv it needs under .venv/ on first use.

PYTHON ?= python3
AIRFLOW_NEW ?= 3.3.2
AIRFLOW_OLD ?= 2.11.2
VENV_NEW := .venv/airflow-$(AIRFLOW_NEW)
VENV_OLD := .venv/airflow-$(AIRFLOW_OLD)
VENV_BENCH := .venv/bench-airflow-$(AIRFLOW_NEW)
BENCH_EXTRAS := apache-airflow-providers-http matplotlib
PYTEST_ARGS ?=

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

# The benchmark's own virtualenv: the peers it compares with (HttpOperator) and the chart stay out of the
# test environments.
$(VENV_BENCH)/.installed: pyproject.toml
	@echo "== creating $(VENV_BENCH) (pip output in $(VENV_BENCH).log)"
	@rm -rf $(VENV_BENCH)
	@$(PYTHON) -m venv $(VENV_BENCH)
	@$(VENV_BENCH)/bin/python -m pip install --upgrade pip > $(VENV_BENCH).log 2>&1 || { cat $(VENV_BENCH).log; exit 1; }
	@$(VENV_BENCH)/bin/python -m pip install "apache-airflow==$(AIRFLOW_NEW)" -e ".[test,redis]" $(BENCH_EXTRAS) \
		>> $(VENV_BENCH).log 2>&1 || { tail -n 60 $(VENV_BENCH).log; exit 1; }
	@touch $@

.venv/airflow-%/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed, $(PYTHON) is " + sys.version.split()[0])'
	@echo "== creating .venv/airflow-$* (apache-airflow==$*; pip output in .venv/airflow-$*.log)"
	@rm -rf .venv/airflow-$*
	@$(PYTHON) -m venv .venv/airflow-$*
	@.venv/airflow-$*/bin/python -m pip install --upgrade pip > .venv/airflow-$*.log 2>&1 \
		|| { cat .venv/airflow-$*.log; exit 1; }
	@.venv/airflow-$*/bin/python -m pip install "apache-airflow==$*" -e ".[test,redis]" >> .venv/airflow-$*.log 2>&1 \
		|| { tail -n 60 .venv/airflow-$*.log; exit 1; }
	@touch $@

clean:
	rm -rf .venv .demo .pytest_cache .ruff_cache .mypy_cache dist
