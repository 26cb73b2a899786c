# Course "Convolutional Neural Networks, step by step" - see README.md.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PY := $(abspath $(VENV))/bin/python
# every instructor tool, one entry point (pyproject.toml [project.scripts])
CNN := $(abspath $(VENV))/bin/cnn
# nbgrader runs `alembic` in a subprocess: the venv's bin/ must be on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)
# The assignment most targets work on (course.toml lists them all; `make release` and
# `make validate` do every one). For the capstone: make grade ASSIGNMENT=train_cnn
ASSIGNMENT ?= conv_step_by_step
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
N ?= 20
PYTEST_ARGS ?=
LAB_ARGS ?=
# The edition `make lab` opens: en or zh (LANG=zh... also selects zh); empty: JupyterLab as it is.
EDITION ?=
ROSTER ?= roster.csv
# make grade ENGINE=dask grades through dask.distributed: on SCHEDULER if given, else on a LocalCluster.
ENGINE ?=
SCHEDULER ?=

.PHONY: help venv system-deps hidden-data release validate demo grade feedback export report figures visible-accuracy \
        summary test test-fast lint lab formgrader checks-data exchange publish collect return-feedback roster \
        bench accuracy isolation limits clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

venv: $(VENV)/.installed  ## create the virtual environment with pinned requirements

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install -q --no-deps -e .
	# jsonschema's optional IRI checker (pulled in by jupyter-events) builds five Earley parsers
	# at import, 2.7 s on every nbgrader or jupyter start; nothing here validates IRIs.
	$(PY) -m pip uninstall -y -q rfc3987-syntax
	touch $@

system-deps:  ## bubblewrap for the sandbox (apt as root, otherwise prints how)
	@scripts/system-deps.sh bubblewrap

hidden-data: venv  ## build grader_data/ (hidden inputs and expectations) if the solutions changed
	$(CNN) hidden-data --if-stale

checks-data: venv  ## regenerate source/<assignment>/cnn_checks_data.json (visible checks' expected values)
	$(CNN) checks-data

release: venv hidden-data checks-data  ## regenerate every edition's source/<id>_<lang>/ and release/ with nbgrader (and due dates)
	$(CNN) translate build
	for a in $$($(CNN) assignments --editions); do nbgrader generate_assignment $$a --force || exit 1; done
	$(CNN) due-dates

validate: venv hidden-data  ## nbgrader validate on every edition's source notebook
	for a in $$($(CNN) assignments --editions); do nbgrader validate source/$$a/$$a.ipynb || exit 1; done

demo: venv system-deps release  ## the whole course on bundled examples, in demo/ (never touches the class)
	$(CNN) demo

grade: venv system-deps hidden-data  ## grade submitted/ in parallel; ENGINE=dask [SCHEDULER=tcp://host:8786]: through Dask (docs/scale.md); exit 3 = some need attention
	$(CNN) grade --assignment $(ASSIGNMENT) --jobs $(JOBS) $(if $(ENGINE),--engine $(ENGINE)) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

feedback: venv  ## HTML feedback for every graded student (self-contained, no hidden test source)
	nbgrader generate_feedback $(ASSIGNMENT) --force

exchange:  ## create the course's exchange folder (shared by every user of this machine)
	@mkdir -p "$${CNN_EXCHANGE:-exchange}" && chmod 1777 "$${CNN_EXCHANGE:-exchange}" && \
	  echo "exchange: $$(cd "$${CNN_EXCHANGE:-exchange}" && pwd)"

publish: venv exchange  ## release the assignment to students through the exchange
	nbgrader release_assignment $(ASSIGNMENT) --force

collect: venv  ## collect the latest submission of every student from the exchange into submitted/
	nbgrader collect $(ASSIGNMENT)

return-feedback: venv  ## release the generated feedback to every student through the exchange
	nbgrader release_feedback $(ASSIGNMENT)

roster: venv  ## import students (CSV: id,first_name,last_name,email) into the gradebook: ROSTER=file.csv
	nbgrader db student import $(ROSTER)

export: venv  ## grades.csv (nbgrader export) and canvas.csv (Canvas gradebook import)
	nbgrader export
	nbgrader export --exporter=cnngrader.glue.exports.CanvasExportPlugin --to=canvas.csv

report: venv  ## feedback/report.html: histogram, per-function means, failure reasons, attention list
	$(CNN) report --assignment $(ASSIGNMENT)

summary: venv  ## print the per-student, per-function table from the gradebook
	$(CNN) grade --assignment $(ASSIGNMENT) --summary-only

figures: venv  ## redraw source/<assignment>/images/ in every language (Chinese needs fonts-wqy-microhei)
	@scripts/system-deps.sh fonts-wqy-microhei
	$(CNN) figures

lab: venv  ## JupyterLab as a student, in student/ (EDITION=zh or LANG=zh: the Chinese edition; LAB_ARGS passed on)
	EDITION="$(EDITION)" LANG="$(LANG)" scripts/lab.sh student $(LAB_ARGS)

formgrader: venv  ## JupyterLab as the instructor, on the course (formgrader, create assignment)
	scripts/lab.sh instructor $(LAB_ARGS)

test: venv  ## the whole test suite (installs bubblewrap, chromium, postgresql when root)
	@scripts/system-deps.sh bubblewrap chromium postgresql fonts-wqy-microhei
	$(CNN) hidden-data --if-stale
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv  ## the fast subset (unit tests, no grading runs), in seconds
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: venv  ## ruff
	ruff check .

bench: venv system-deps hidden-data  ## stock nbgrader vs hardened grading, local and Dask, on N submissions (side by side)
	$(CNN) bench --n $(N) --jobs $(JOBS)

accuracy: venv system-deps hidden-data  ## mutants caught, variants passed, isolation holding
	$(CNN) accuracy --jobs $(JOBS)

visible-accuracy: venv  ## the student's loop over the catalogue: visible checks and Validate (RELEASE=folder to measure another)
	$(CNN) visible-accuracy $(if $(RELEASE),--release $(RELEASE))

isolation: venv system-deps hidden-data  ## full-size isolation cases: 3 s victim next to an attacker, default limits
	CNN_FULL_SIZE=1 $(PY) -m pytest -s tests/test_isolation.py $(PYTEST_ARGS)

limits: venv  ## print every limit in force (defaults from cnngrader/sandbox/limits.py, overrides from nbgrader_config.py)
	$(CNN) limits

clean:  ## remove generated grading output (keeps the venv)
	@echo "make clean removes generated output only; submitted/ (students' work) is never touched."
	rm -rf autograded/*/ feedback/*/ .grading/results .grading/staged demo grades.csv grades_by_function.csv canvas.csv
