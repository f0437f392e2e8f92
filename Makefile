# trainlab: `make demo` and `make test` do all the set-up themselves.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
FMNIST  := /usr/share/datasets/fashion-mnist
# torch/torchvision pinned to the builds that pip finds on this machine's disk;
# pyproject keeps ordinary ranges so other machines resolve their own.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

SHELL       := bash
.SHELLFLAGS := -eo pipefail -c
# pip on this machine warns about every missing mirror folder; keep its real messages only.
QUIET_PIP   := { grep -v '^WARNING: Location' || true; }

.PHONY: setup demo test lint fast slow bench dataset browser postgres clean textbook

setup: $(STAMP) dataset

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	($(BIN)/pip install -q --disable-pip-version-check $(TORCH_PINS) 2>&1 | $(QUIET_PIP)) || \
	    ($(BIN)/pip install -q --disable-pip-version-check torch torchvision 2>&1 | $(QUIET_PIP))
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | $(QUIET_PIP)
	touch $(STAMP)

# Fashion-MNIST from Debian's package where apt-get is usable; otherwise trainlab's
# loader downloads it on first use or says exactly how to get it.
dataset:
	@if [ ! -f $(FMNIST)/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null \
	    && [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) \
	    || echo "note: could not install dataset-fashion-mnist; trainlab will try to download it"; \
	fi

# Headless Chromium for the test that renders report.html in a real browser (it skips itself
# where Chromium cannot be installed).
browser:
	@if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1)) \
	    || echo "note: could not install chromium; the browser test will be skipped"; \
	fi

# PostgreSQL for the test that runs two `trainlab tune` workers on one study in a real server
# (a throw-away cluster from initdb; the test skips itself where PostgreSQL cannot be installed).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null \
	    && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1)) \
	    || echo "note: could not install postgresql; the PostgreSQL test will be skipped"; \
	fi

demo: setup
	$(BIN)/trainlab train recipes/fashion_mnist.yaml

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples

test: setup browser postgres lint
	$(BIN)/python -m pytest

slow: setup postgres
	$(BIN)/python -m pytest -m slow

# Every measured table of docs/textbook/ (long: about an hour on 2 cores; not part of test).
textbook: setup
	OMP_NUM_THREADS=1 $(BIN)/python docs/textbook/make_textbook.py

bench: setup
	@for f in bench/[!_]*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
