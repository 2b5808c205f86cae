"""The pure packages import no I/O, clock, logging, randomness or adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "crossbook"
PURE = ["domain", "engine", "protocol", "marketdata"]
FORBIDDEN = {
    "asyncio", "socket", "time", "logging", "random", "uuid", "os", "io", "pathlib",
    "datetime", "threading", "subprocess", "selectors", "secrets", "sqlite3", "shutil",
    "crossbook.sequencer", "crossbook.journal", "crossbook.gateway", "crossbook.history",
    "crossbook.node", "crossbook.cli", "crossbook.client",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _pure_files() -> list[Path]:
    return [f for pkg in PURE if (SRC / pkg).is_dir() for f in sorted((SRC / pkg).rglob("*.py"))]


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_pure_module_imports_no_io_clock_logging_or_randomness(path: Path) -> None:
    bad = {
        name
        for name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    }
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_pure_packages_exist() -> None:
    assert (SRC / "domain").is_dir()
    assert (SRC / "engine").is_dir()
