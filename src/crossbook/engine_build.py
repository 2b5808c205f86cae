"""Which build of the matching engine Python imports: the mypyc-compiled one or the sources.

`./scripts/compile-engine` compiles the engine's pure modules with mypyc in place, beside their
`.py` files (about twice as fast per command). Python would import any `.so` found there, even
one compiled from older sources, and the compiled modules call each other natively, so mixing
compiled and plain modules would give two different `Order` classes. This module decides once,
when `crossbook` is first imported, for all engine modules together:

- `CROSSBOOK_ENGINE=auto` (the default): compiled if every module has a compiled build at least
  as new as its source, otherwise the sources;
- `CROSSBOOK_ENGINE=python`: always the sources (the test suite's default, so the reference
  path is what it tests);
- `CROSSBOOK_ENGINE=compiled`: the compiled build, or an ImportError saying why not.

When the sources win, an import hook loads `crossbook.engine.<module>` from its `.py` file.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# The modules scripts/compile-engine compiles, in its order.
COMPILED_MODULES: tuple[str, ...] = (
    "order", "level", "book", "stops", "accounts", "lifecycle", "validation", "exchange",
)
ENGINE_DIR = Path(__file__).resolve().parent / "engine"


def _compiled_file(module: str) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = ENGINE_DIR / f"{module}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def compiled_build_problem() -> str | None:
    """Why the compiled build cannot be used (missing or stale module), or None if it can."""
    for module in COMPILED_MODULES:
        compiled = _compiled_file(module)
        if compiled is None:
            return f"crossbook.engine.{module} has no compiled build (run ./scripts/compile-engine)"
        source = ENGINE_DIR / f"{module}.py"
        if source.stat().st_mtime > compiled.stat().st_mtime:
            return (
                f"crossbook.engine.{module} changed since it was compiled "
                "(run ./scripts/compile-engine again)"
            )
    return None


class _SourceEngineFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled engine modules' `.py` sources ahead of their extension modules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, module = fullname.rpartition(".")
        if package != "crossbook.engine" or module not in COMPILED_MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, ENGINE_DIR / f"{module}.py")


def select() -> str:
    """Choose the engine build per `CROSSBOOK_ENGINE`; returns "mypyc" or "python"."""
    wanted = os.environ.get("CROSSBOOK_ENGINE", "auto")
    if wanted not in ("auto", "python", "compiled"):
        raise ImportError(f"CROSSBOOK_ENGINE must be auto, python or compiled, not {wanted!r}")
    problem = None if wanted == "python" else compiled_build_problem()
    if wanted == "compiled" and problem is not None:
        raise ImportError(f"CROSSBOOK_ENGINE=compiled but {problem}")
    if wanted == "python" or problem is not None:
        if not any(isinstance(f, _SourceEngineFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _SourceEngineFinder())
        return "python"
    return "mypyc"


def loaded_build() -> str:
    """The build of the engine as actually imported: "mypyc" or "python"."""
    from crossbook.engine import exchange  # noqa: PLC0415 - imported on demand, not at start

    return "mypyc" if (exchange.__file__ or "").endswith(tuple(
        importlib.machinery.EXTENSION_SUFFIXES
    )) else "python"
