"""Layering rules of docs/ARCHITECTURE.md, checked on the source (issue "One place for each
concern"): Hydra only at the edge (``cli/``), the engine never imports the research toolbox,
no function longer than 120 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import demosaic

SRC = Path(demosaic.__file__).parent
MAX_FUNCTION_LINES = 120


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(SRC.rglob("*.py"))]


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_hydra_is_imported_only_by_the_command_line_layer() -> None:
    offenders = [str(p.relative_to(SRC)) for p, tree in _modules()
                 if p.parent.name != "cli" and any(n.split(".")[0] == "hydra" for n in _imports(tree))]
    assert offenders == []


def test_the_engine_never_imports_the_research_toolbox() -> None:
    offenders = [str(p.relative_to(SRC)) for p, tree in _modules()
                 if p.parent.name == "engine"
                 and any(n.startswith("demosaic.research") for n in _imports(tree))]
    assert offenders == []


def test_no_function_is_longer_than_120_lines() -> None:
    long = [f"{p.relative_to(SRC)}:{n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for p, tree in _modules() for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []
