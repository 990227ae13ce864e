# Every target sets itself up: a fresh machine needs only Python 3, pip and cargo.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.deps-installed
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test test-extended build lint rust-test py-test fuzz-smoke fuzz bench clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): requirements-dev.txt | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

# Builds the extension in release mode and installs the package into the venv.
build: $(STAMP)
	maturin develop --release --quiet

demo: build
	$(PY) -m eventpak demo

lint: $(STAMP)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	ruff check python tests benches
	ruff format --check python tests benches

rust-test:
	cargo test --workspace

py-test: build
	mypy python/eventpak
	$(PY) -m mypy.stubtest eventpak._native
	$(PY) -m pytest

test: build lint rust-test fuzz-smoke py-test

# Longer reliability runs: 20x crash states, 2,000 kill points, 200k byte flips, more
# model examples and property cases (see docs/reliability.md).
test-extended: build
	EVENTPAK_EXTENDED=1 cargo test --workspace --release
	EVENTPAK_EXTENDED=1 $(PY) -m pytest

# libFuzzer on the stable toolchain (fuzz/README.md): replays fuzz/regressions, then 3 s per target.
fuzz-smoke:
	FUZZ_SECONDS=3 fuzz/run.sh

fuzz:
	fuzz/run.sh

bench: build
	$(PY) -m pytest benches --benchmark-only -q
	$(PY) -m benches.compare

clean:
	rm -rf $(VENV) target eventpak-demo-data
