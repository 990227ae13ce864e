"""README.md runs as written: every ```python block, the command lines, the links and the layout."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
README = REPO / "README.md"
TEXT = README.read_text(encoding="utf-8")

# CI and newcomers rely on these first lines: the two set-up commands stay at the top, as they are.
SETUP = (
    "# eventpak\n"
    "\n"
    "eventpak is an embedded, durable, append-only event log for Python services, with its storage engine"
    " in Rust.\n"
    "\n"
    "```sh\n"
    "make demo   # creates .venv, builds the extension (release), runs `python -m eventpak demo`"
    " on ./eventpak-demo-data\n"
    "make test   # creates .venv, builds, runs cargo fmt/clippy/test, ruff, mypy, stubtest and pytest\n"
    "```\n"
)


def _blocks(language: str) -> list[tuple[int, str]]:
    """The fenced blocks of ``language`` as (line of their first code line, code)."""
    blocks = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```[ \t]*$", TEXT, re.MULTILINE | re.DOTALL):
        if match.group(1) == language:
            blocks.append((TEXT[: match.start(2)].count("\n") + 1, match.group(2)))
    return blocks


PYTHON_BLOCKS = _blocks("python")


def _quickstart_code() -> str:
    heading = re.search(r"^## Quickstart\s*$", TEXT, re.MULTILINE)
    assert heading, "README.md has no '## Quickstart' heading"
    block = re.search(r"^```python\n(.*?)^```", TEXT[heading.end() :], re.MULTILINE | re.DOTALL)
    assert block, "no ```python block after the Quickstart heading"
    return block.group(1)


def test_readme_starts_with_the_setup_commands() -> None:
    assert TEXT.startswith(SETUP)


def test_readme_quickstart_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # keep its data dir inside tmp_path
    code = _quickstart_code()
    assert "import eventpak as ep" in code
    namespace: dict[str, object] = {"__name__": "__readme__"}
    exec(compile(code, str(README), "exec"), namespace)
    store = namespace["store"]
    assert store.closed  # type: ignore[attr-defined]
    assert Path(store.path).parent == tmp_path  # type: ignore[attr-defined]


def test_readme_has_an_example_per_section() -> None:
    assert len(PYTHON_BLOCKS) >= 8
    for heading in (
        "Quickstart",
        "Workers and checkpoints",
        "Projections",
        "Names: entity, scope and kind",
        "Durability",
        "Idempotency keys",
        "Errors",
    ):
        section = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", TEXT, re.MULTILINE | re.DOTALL)
        assert section, f"README.md has no '## {heading}' section"
        assert "```python\n" in section.group(1), f"'## {heading}' has no python example"


@pytest.mark.parametrize(("line", "code"), PYTHON_BLOCKS, ids=[f"line{line}" for line, _ in PYTHON_BLOCKS])
def test_readme_python_block_runs(line: int, code: str, tmp_path: Path) -> None:
    """Each block runs alone, in a fresh interpreter, in an empty working directory, with its
    temporary directories inside tmp_path. Padding keeps README.md's line numbers in tracebacks."""
    assert "import eventpak as ep" in code
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", "\n" * (line - 1) + code],
        cwd=work,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"README.md block at line {line} failed:\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr


def test_readme_command_lines_run(tmp_path: Path) -> None:
    """The ``python -m eventpak`` lines of the README's sh blocks run, in order, in one directory."""
    commands = [
        shlex.split(text)
        for _, code in _blocks("sh")
        for text in (line.split("#")[0].strip() for line in code.splitlines())
        if text.startswith("python -m eventpak")
    ]
    assert [c[3] for c in commands[:3]] == ["--version", "demo", "stats"]
    for command in commands:
        done = subprocess.run(
            [sys.executable, *command[1:]],
            cwd=tmp_path,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{shlex.join(command)}: {done.stderr}"


def test_readme_refers_only_to_the_repository() -> None:
    assert not re.search(r"https?://|www\.", TEXT)
    for target in re.findall(r"\]\(([^)]+)\)", TEXT):
        path = target.split("#")[0]
        assert path and (REPO / path).exists(), f"README.md links to {target}, which is not in the repository"


def test_readme_layout_names_existing_paths() -> None:
    layout = re.search(r"^## Layout\n+```\n(.*?)^```", TEXT, re.MULTILINE | re.DOTALL)
    assert layout, "README.md has no Layout block"
    for row in layout.group(1).splitlines():
        path = row.split()[0]
        assert (REPO / path).is_dir(), f"the Layout names {path}, which is not a folder of the repository"
    assert (REPO / "benches/compare/__init__.py").is_file()
    assert (REPO / "tests/fixtures/v1_store/segments").is_dir()


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TMPDIR"] = str(tmp_path)
    return env
