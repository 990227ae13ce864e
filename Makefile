# Every target sets itself up: a fresh machine needs only Python 3, pip and cargo.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.deps-installed
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test test-extended build lint rust-test py-test wheel-test fuzz-smoke fuzz bench clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): requirements-dev.txt | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

# Builds the extension in release mode and installs the package into the venv. The module is
# abi3 (`_native.abi3.so`); an interpreter-specific `_native.cpython-*.so` left by an older build
# would win the import over it, so every built module is removed first.
build: $(STAMP)
	rm -f python/eventpak/_native.*.so python/eventpak/_native.so
	maturin develop --release --quiet

demo: build
	$(PY) -m eventpak demo

lint: $(STAMP)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	ruff check python tests benches examples
	ruff format --check python tests benches examples

rust-test:
	cargo test --workspace

py-test: build
	mypy python/eventpak
	$(PY) -m mypy.stubtest eventpak._native
	$(PY) -m pytest

# Builds the release wheel (incremental after `build`: same target dir, profile and features),
# installs it into a fresh venv and runs scripts/wheel_check.py there from outside the source
# tree: README quickstart, version == Cargo's, py.typed and _native.pyi shipped. .venv is untouched.
WHEEL_DIR  := target/wheel-dist
WHEEL_VENV := target/wheel-venv
wheel-test: $(STAMP)
	rm -rf $(WHEEL_DIR) $(WHEEL_VENV)
	maturin build --release --quiet --interpreter $(PY) --out $(WHEEL_DIR)
	$(PY) -m venv --without-pip $(WHEEL_VENV)
	$(PY) -m pip --python $(WHEEL_VENV)/bin/python install --quiet --disable-pip-version-check \
		$(WHEEL_DIR)/eventpak-*.whl
	env -u VIRTUAL_ENV $(WHEEL_VENV)/bin/python -I scripts/wheel_check.py $(CURDIR)

# pytest runs last: its summary closes the run.
test: build lint rust-test fuzz-smoke wheel-test py-test

# Longer reliability runs: 20x crash states, 2,000 kill points, 1,000 kills of shared-mode
# writers, 200k byte flips, more model examples and property cases (see docs/reliability.md).
test-extended: build
	EVENTPAK_EXTENDED=1 cargo test --workspace --release
	EVENTPAK_EXTENDED=1 EVENTPAK_SHARED_KILLS=1000 $(PY) -m pytest

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
