# Two commands on a fresh machine: `make book` and `make test`.
SHELL := /bin/bash
VENV   := .venv
# the interpreter .venv is made from (the book is built and tested with 3.11): make book PYTHON=python3.11
# (:=, not ?=: a PYTHON in the environment, as node-gyp users set, is not taken)
PYTHON := python3
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --quiet --disable-pip-version-check
STAMP  := $(VENV)/.installed
# Where torch comes from (README): empty, wherever pip finds torch==2.13.0 (this project's
# machines: a CPU wheel on disk); e.g. https://download.pytorch.org/whl/cpu where pip
# reaches only PyPI, whose Linux wheel is the CUDA build (gigabytes). Read when .venv is
# set up (a fresh clone); an existing .venv keeps its torch (README).
TORCH_INDEX ?=
# the version has one home, requirements.txt
TORCH_PIN := $(shell grep -E '^torch==' requirements.txt)
# --all: Sphinx re-reads only changed pages, but a change in mamlbook/ changes every page.
JB_FLAGS := -W -n --keep-going --all
export PYTHONHASHSEED := 0
# One intra-op thread: at this book's tensor sizes a second thread barely helps, and on a
# busy machine OpenMP's spin-waiting makes two threads up to 10x slower than one.
export OMP_NUM_THREADS ?= 1

.PHONY: book test setup unit nbval wheel clean assets browser student lab

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(PIP) install "$(TORCH_PIN)" --index-url $(TORCH_INDEX))
	$(PIP) install -r requirements.txt 2> >(grep -v "is ignored: it is neither" >&2)
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

# MathJax and the ipywidgets manager, served by the book itself (no CDN): _vendor/.
assets:
	tools/vendor_assets.sh

book: setup assets
	$(VENV)/bin/jupyter-book build . $(JB_FLAGS)

unit: setup
	# Unit tests draw no figure on screen: the non-GUI backend (chapters use inline SVG).
	MPLBACKEND=Agg $(PY) -m pytest tests -q --ignore=tests/browser

nbval: setup
	$(PY) -m pytest --nbval-lax --durations=0 -p no:cacheprovider chapters

# Every chapter against the package installed from its wheel, run in an unrelated
# directory: what a student gets from `pip install` (no checkout to read files from).
wheel: setup
	$(PY) tools/chapters_from_wheel.py

# The built book in headless Chromium, offline: math and widgets render (needs `book`).
browser: setup
	tools/install_chromium.sh
	$(PY) -m pytest tests/browser -q

# The student edition (README, "Instructors"): notebooks without solutions, the book built
# from them (_build/student/html), one Otter-Grader assignment per chapter (the instructor's
# _build/instructor/assignments/<chapter>/{student,autograder}, masters with solutions) and
# the handouts alone in _build/student/handouts; then no solution in the student HTML.
STUDENT_SRC := _build/student-src
student: setup assets
	rm -rf _build/student  # nothing left from an earlier layout (everything here is for students)
	$(PY) tools/student_edition.py book --out $(STUDENT_SRC)
	$(VENV)/bin/jupyter-book build $(STUDENT_SRC) $(JB_FLAGS)
	mkdir -p _build/student
	mv $(STUDENT_SRC)/_build/html _build/student/html
	$(PY) tools/student_edition.py assign --out _build/instructor/assignments --handouts _build/student/handouts
	cp _build/instructor/assignments/_masters/mamlbook-*.whl _build/student/  # the package alone, no solution
	MAMLBOOK_STUDENT_HTML=_build/student/html $(PY) -m pytest -q -p no:cacheprovider \
		tests/test_student_edition.py -k built_html

# The chapters in JupyterLab as the book reads them (README, "Running the chapters
# yourself"): the lab edition in lab/ (a copy you changed is kept), then JupyterLab there
# (as root, in a container, with --allow-root; LAB_FLAGS: more options, e.g. --port=8889).
lab: setup
	$(PY) tools/lab_edition.py --out lab
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=lab $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_FLAGS)

test: unit nbval wheel book browser

clean:
	rm -rf _build .pytest_cache
