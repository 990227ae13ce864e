"""Check an installed eventpak wheel: the README quickstart runs, versions agree, typing files ship.

Run it with the interpreter of a fresh virtualenv the wheel was installed into, in isolated mode
so neither the source tree nor PYTHONPATH can supply ``eventpak``:

    target/wheel-venv/bin/python -I scripts/wheel_check.py /path/to/repo

It works from a temporary directory outside the source tree and exits 1 listing every failed check.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import sysconfig
import tempfile
import tomllib
from pathlib import Path


def quickstart_code(readme: Path) -> str:
    text = readme.read_text(encoding="utf-8")
    heading = re.search(r"^## Quickstart\s*$", text, re.MULTILINE)
    if not heading:
        raise SystemExit(f"{readme}: no '## Quickstart' heading")
    block = re.search(r"^```python\n(.*?)^```", text[heading.end() :], re.MULTILINE | re.DOTALL)
    if not block:
        raise SystemExit(f"{readme}: no ```python block after the Quickstart heading")
    # Padded so that tracebacks give README.md's own line numbers.
    return "\n" * text[: heading.end() + block.start(1)].count("\n") + block.group(1)


def main(repo: Path) -> int:
    readme = repo / "README.md"
    cargo_version = tomllib.loads((repo / "Cargo.toml").read_text(encoding="utf-8"))["workspace"]["package"][
        "version"
    ]
    failures: list[str] = []

    with tempfile.TemporaryDirectory(prefix="eventpak-wheel-check-") as work:
        os.chdir(work)
        tempfile.tempdir = work  # the quickstart's mkdtemp() lands in here and is removed with it

        import eventpak  # only after leaving the source tree

        package_dir = Path(eventpak.__file__).resolve().parent
        native_file = Path(eventpak._native.__file__).resolve()
        print(f"wheel-check: eventpak from {package_dir}")
        print(f"wheel-check: native module {native_file.name}")
        site_packages = Path(sysconfig.get_paths()["platlib"]).resolve()
        if package_dir != site_packages / "eventpak":
            failures.append(f"eventpak was imported from {package_dir}, not from {site_packages}")
        if native_file.parent != package_dir:
            failures.append(f"eventpak._native was loaded from {native_file}, outside {package_dir}")

        namespace: dict[str, object] = {"__name__": "__readme__"}
        try:
            exec(compile(quickstart_code(readme), str(readme), "exec"), namespace)
        except Exception as exc:
            import traceback

            traceback.print_exc()
            failures.append(f"README quickstart failed: {type(exc).__name__}: {exc}")

    dist_version = importlib.metadata.version("eventpak")
    if dist_version != cargo_version:
        failures.append(f"wheel metadata version {dist_version!r}, Cargo workspace {cargo_version!r}")
    module_version = getattr(eventpak, "__version__", None)
    if module_version != cargo_version:
        failures.append(f"eventpak.__version__ {module_version!r}, Cargo workspace {cargo_version!r}")

    recorded = {str(f) for f in importlib.metadata.files("eventpak") or ()}
    for name in ("py.typed", "_native.pyi"):
        if not (package_dir / name).is_file() or f"eventpak/{name}" not in recorded:
            failures.append(f"the installed package lacks eventpak/{name}")

    if failures:
        sys.stdout.flush()
        print("wheel-check: FAILED", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print(f"wheel-check: OK (eventpak {cargo_version}, quickstart, py.typed, _native.pyi)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} REPO_ROOT")
    sys.exit(main(Path(sys.argv[1]).resolve()))
