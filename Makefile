# Every target sets itself up from nothing: Debian packages, a venv in .venv, the package and its extras.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := espeak-ng flite ffmpeg libsndfile1 build-essential zlib1g-dev chromium chromium-driver
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo test bench clean sysdeps

sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	$(MAKE) sysdeps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench,serve,export]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m seqspeech.demo

test: setup
	$(PY) -m pytest tests

bench: setup
	$(PY) bench/asr_whisper.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
