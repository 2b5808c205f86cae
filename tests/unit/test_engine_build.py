"""The engine build choice: compiled only when complete and current, the sources otherwise."""

from __future__ import annotations

import importlib.machinery
import os
import sys
from pathlib import Path

import pytest

from crossbook import engine_build

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def test_the_suite_runs_the_build_it_was_asked_for() -> None:
    wanted = os.environ["CROSSBOOK_ENGINE"]
    expected = "mypyc" if wanted == "compiled" else "python"
    assert engine_build.loaded_build() == expected
    engine_modules = {
        name: module.__file__ or ""
        for name, module in sys.modules.items()
        if name.rpartition(".")[2] in engine_build.COMPILED_MODULES
        and name.startswith("crossbook.engine.")
    }
    assert engine_modules
    for name, path in engine_modules.items():
        assert path.endswith(".py") == (expected == "python"), name


def _fake_engine(tmp_path: Path, compiled: tuple[str, ...]) -> Path:
    for module in engine_build.COMPILED_MODULES:
        (tmp_path / f"{module}.py").write_text("")
    for module in compiled:
        (tmp_path / f"{module}{SUFFIX}").write_bytes(b"")
    return tmp_path


def test_a_complete_current_build_is_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        engine_build, "ENGINE_DIR", _fake_engine(tmp_path, engine_build.COMPILED_MODULES)
    )
    assert engine_build.compiled_build_problem() is None


def test_a_missing_module_makes_the_build_unusable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        engine_build, "ENGINE_DIR", _fake_engine(tmp_path, engine_build.COMPILED_MODULES[:-1])
    )
    problem = engine_build.compiled_build_problem()
    assert problem is not None
    assert "crossbook.engine.exchange has no compiled build" in problem


def test_a_source_newer_than_its_build_makes_it_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine_dir = _fake_engine(tmp_path, engine_build.COMPILED_MODULES)
    compiled = engine_dir / f"book{SUFFIX}"
    os.utime(compiled, (1_000_000, 1_000_000))
    monkeypatch.setattr(engine_build, "ENGINE_DIR", engine_dir)
    problem = engine_build.compiled_build_problem()
    assert problem is not None
    assert "crossbook.engine.book changed since it was compiled" in problem


def test_asking_for_an_unusable_compiled_build_fails_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_build, "ENGINE_DIR", _fake_engine(tmp_path, ()))
    monkeypatch.setenv("CROSSBOOK_ENGINE", "compiled")
    with pytest.raises(ImportError, match="has no compiled build"):
        engine_build.select()


def test_an_unknown_choice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSBOOK_ENGINE", "fast")
    with pytest.raises(ImportError, match="auto, python or compiled"):
        engine_build.select()


def test_auto_falls_back_to_the_sources_when_the_build_is_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_build, "ENGINE_DIR", _fake_engine(tmp_path, ("order",)))
    monkeypatch.setenv("CROSSBOOK_ENGINE", "auto")
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    assert engine_build.select() == "python"
