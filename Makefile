# Two commands for a fresh machine:  make lab   (open the course)   make test   (run the suite)
PYTHON ?= python3.11
# e.g. PIP_EXTRA="--extra-index-url https://download.pytorch.org/whl/cpu" for the CPU torch
PIP_EXTRA ?=
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab test test-fast bench nav clean-notebooks zh clean student grade grade-all bench-grading

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "Need $(PYTHON) (Python 3.11) on PATH, or run: make PYTHON=/path/to/python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) requirements.txt pyproject.toml
	$(PY) -m pip install $(PIP_EXTRA) -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

# Lab's defaults for this venv (binder/overrides.json: no news pop-up, widget state saved)
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
# extra options for Lab, e.g. make lab LAB_ARGS="--no-browser --port=8890"
LAB_ARGS ?=
# Docker, Codespaces and cloud VMs run as root; Lab refuses root without --allow-root
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

$(LAB_SETTINGS): binder/overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp binder/overrides.json $@

lab: $(STAMP) $(LAB_SETTINGS)  ## open the course in JupyterLab at the start page
	$(PY) -m jupyterlab --ServerApp.root_dir="$(CURDIR)" $(ROOT_FLAG) \
		--LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb $(LAB_ARGS)

test: $(STAMP)  ## the whole suite: unit tests, notebooks run, hygiene, Binder, browser
	@$(PY) -m pytest -n 2 --dist loadgroup; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; fi; \
	exit $$rc

test-fast: $(STAMP)  ## unit tests only (no notebooks, no browser)
	$(PY) -m pytest -m "not notebook and not browser"

# e.g. make bench BENCH_ARGS=--figures (also check every notebook figure's legibility)
BENCH_ARGS ?=

bench: $(STAMP)  ## speed and memory: kernels, notebooks, the lab's latency, grading
	$(PY) tools/bench_kernels.py
	$(PY) tools/bench_notebooks.py $(BENCH_ARGS)
	$(PY) tools/bench_lab.py
	@# complete edition only: the student edition has no grader to time
	@if [ -f tools/bench_grading.py ]; then $(PY) -m tools.bench_grading; fi

nav: $(STAMP)  ## rewrite prev/next navigation and the index in 00_start_here
	$(PY) tools/navigation.py

zh: $(STAMP)  ## write notebooks/zh/ from the English notebooks and the catalogue
	$(PY) tools/zh.py

clean-notebooks: $(STAMP)  ## strip outputs and execution counts from every notebook
	$(PY) tools/clean_notebooks.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# ---- instructor only (make student leaves this section out of the student edition) ----
student: $(STAMP)  ## write the student edition (solutions and derivations out) to student/
	rm -rf student
	$(PY) -m instructor.grading release student

grade: $(STAMP)  ## one student on the hidden tests: make grade SUB=submissions/alice
	$(PY) -m instructor.grading grade $(SUB)

SUBMISSIONS ?= submissions
JOBS ?= 2
OUT ?= gradebook.csv
grade-all: $(STAMP)  ## a class: make grade-all SUBMISSIONS=DIR JOBS=2 OUT=gradebook.csv
	$(PY) -m instructor.grading grade-all $(SUBMISSIONS) --jobs $(JOBS) --out $(OUT) $(FORCE)

bench-grading: $(STAMP)  ## seconds to grade one student's whole course (target <= 15 s)
	$(PY) -m tools.bench_grading
