"""Layering rules of docs/ARCHITECTURE.md, checked on the source: Hydra only at the edge
(``cli/``), the core packages never import the research toolbox, no import cycle between
modules (lazy imports inside functions included), no module imports another's private names,
no function over 80 lines, no module over 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import demosaic

SRC = Path(demosaic.__file__).parent
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500


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


def test_the_core_never_imports_the_research_toolbox() -> None:
    offenders = [str(p.relative_to(SRC)) for p, tree in _modules()
                 if p.parent.name in ("training", "inference", "evaluation", "models", "io", "sim")
                 and any(n.startswith("demosaic.research") for n in _imports(tree))]
    assert offenders == []


def test_the_training_hooks_do_not_import_the_trainer() -> None:
    """The trainer imports its hooks; the hooks share what both need through training.outputs
    and training.data_order, never through the trainer (no import cycle)."""
    for name in ("hooks.py", "outputs.py", "data_order.py"):
        tree = ast.parse((SRC / "training" / name).read_text())
        assert "demosaic.training.loop" not in _imports(tree), name


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in it, lazy imports included)."""
    modules = {_module_name(p): tree for p, tree in _modules()}
    graph: dict[str, set[str]] = {}
    for name, tree in modules.items():
        out: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    if sub in modules or node.module in modules:
                        out.add(sub if sub in modules else node.module)
        graph[name] = out - {name}
    return graph


def test_no_import_cycle_between_modules() -> None:
    graph = _import_graph()
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for nxt in sorted(graph[node]):
            found = walk(nxt, path + [node])
            if found:
                return found
        done.add(node)
        return None

    cycles = [c for c in (walk(m, []) for m in sorted(graph)) if c]
    assert cycles == []


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = [f"{p.relative_to(SRC)}: {node.module}.{a.name}" for p, tree in _modules()
                 for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("demosaic")
                 for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []


def test_no_module_is_longer_than_500_lines() -> None:
    long = [f"{p.relative_to(SRC)} ({n} lines)" for p, _ in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert long == []


def test_no_function_is_longer_than_80_lines() -> None:
    long = [f"{p.relative_to(SRC)}:{n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for p, tree in _modules() for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_one_device_choice_for_every_command(monkeypatch) -> None:
    """Training, evaluation and inference resolve devices with the same function: ``auto``
    picks CUDA, then MPS, then CPU, and a missing device names its setting."""
    import pytest
    import torch

    from demosaic.cli.evaluate import _device
    from demosaic.devices import resolve_device
    from demosaic.inference.tiling import resolve_device as tiling_device
    from demosaic.training.runtime import select_device
    from demosaic.errors import ConfigError

    assert tiling_device is resolve_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device("auto").type == _device("auto") == resolve_device(None).type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu") and _device("auto") == "cpu"
    with pytest.raises(ConfigError, match="trainer.device=cuda:1 but CUDA"):
        select_device("cuda:1")
    with pytest.raises(ConfigError, match="device='gpu0' is not a torch device"):
        resolve_device("gpu0")


def test_one_resolution_of_what_demosaics(tmp_path, monkeypatch) -> None:
    """Checkpoint, shipped model, baseline and parameter-free model all resolve through
    demosaic.models.zoo.resolve_method, which demosaic-eval and the inference model source
    use."""
    import pytest
    import torch

    from demosaic.models import checkpoint as ck
    from demosaic.models import zoo
    from demosaic.models.zoo import method_from_config, resolve_method
    from demosaic.errors import ConfigError
    from demosaic.models import create_model

    torch.manual_seed(0)
    net = create_model("unet", cfa="bayer_rggb", width=8, depth=1)
    path = ck.save_checkpoint(ck.make_checkpoint(net, "unet", net.spec["kwargs"], cfa="bayer_rggb",
                                                 step=5, run_name="v0.1_b"), tmp_path / "b.pt")
    m = resolve_method(checkpoint=path)
    assert (m.kind, m.name, m.info["step"]) == ("checkpoint", "v0.1_b", 5)
    assert m.description == "unet from b.pt (step 5, run v0.1_b)"
    monkeypatch.setitem(zoo.SHIPPED_CHECKPOINTS, "bayer", path)
    assert resolve_method(cfa="bayer_rggb").name == "v0.1_b"
    assert method_from_config({"cfa": "bayer_rggb"}).name == "v0.1_b"
    assert resolve_method(baseline="vng", cfa="bayer_rggb").kind == "baseline"
    assert resolve_method(model="bilinear", cfa="xtrans").demosaicker.pattern.family == "xtrans"
    with pytest.raises(ConfigError, match="only one of"):
        resolve_method(checkpoint=path, baseline="vng")
