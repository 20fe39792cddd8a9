"""The package installs with its configs: from this checkout and from a built wheel elsewhere."""

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _listed_packages() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    block = text.split("packages = [", 1)[1].split("]", 1)[0]
    return ast.literal_eval("[" + block + "]")


def test_every_subpackage_is_listed_in_pyproject():
    found = {"demosaic." + ".".join(p.parent.relative_to(ROOT / "src" / "demosaic").parts)
             for p in (ROOT / "src" / "demosaic").rglob("__init__.py")}
    found |= {"demosaic.configs." + ".".join(p.parent.relative_to(ROOT / "configs").parts)
              for p in (ROOT / "configs").rglob("__init__.py")}
    found = {f.rstrip(".") for f in found}
    assert found == set(_listed_packages())


@pytest.mark.slow
def test_wheel_ships_configs_and_composes_from_elsewhere(tmp_path):
    """Build a wheel, install it into an empty folder, compose the train config from there.

    The wheel is built from a copy of the tracked sources: an in-tree build would reuse a stale
    ``build/`` folder and ship files that no longer exist (moved experiment files)."""
    dist, tree = tmp_path / "dist", tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("src", "configs"):
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(tree)], check=True, capture_output=True)
    wheel = next(dist.glob("demosaic-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "demosaic/configs/train.yaml" in names
    for root in ("experiment", "lineage/experiment", "candidates/experiment"):
        shipped = {Path(n).name for n in names if n.startswith(f"demosaic/configs/{root}/")}
        assert shipped == {p.name for p in (ROOT / "configs" / root).glob("*.yaml")}, root
    assert "demosaic/cfa.py" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    code = (
        "import demosaic, hydra\n"
        "from demosaic.cli.train import register_schemas\n"
        "register_schemas()\n"
        "assert demosaic.__file__.startswith(%r), demosaic.__file__\n"
        "with hydra.initialize_config_module('demosaic.configs', version_base='1.3'):\n"
        "    cfg = hydra.compose('train', overrides=['+experiment=quickstart'])\n"
        "    print(cfg.trainer.run_name)\n"
        "    for name in ('xtrans_default_camera_keep_mix', 'bayer_default_coarse4'):\n"
        "        print(hydra.compose('train', overrides=['+experiment=' + name]).trainer.run_name)\n"
        % str(target)
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    # the research log's folder, a lineage stage built on candidates, a candidate on a stage
    assert out.stdout.split() == ["quickstart", "v8.3_keep_mix030", "v9.4_bayer_coarse4"]


@pytest.mark.parametrize("script", ["demosaic-train", "demosaic-eval", "demosaic-infer",
                                    "demosaic-prepare", "demosaic-report", "demosaic-export",
                                    "demosaic-research", "demosaic-compare"])
def test_console_scripts_answer_help(script, tmp_path):
    out = subprocess.run([script, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout) > 100
