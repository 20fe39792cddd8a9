"""Every configs/dataset file builds its datasets (data root from DEMOSAIC_DATA), missing
folders fail clearly, and the bundled samples stay small and free of test images."""

import hashlib
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from demosaic import cfa
from demosaic.data import build_dataset, load_dataset_config
from demosaic.data.common import SAMPLES_DIR
from demosaic.data.shards import build_raw_teacher, rank_sharpness
from demosaic.errors import ConfigError
from demosaic.io.dng import write_dng

CONFIG_DIR = Path(str(resources.files("demosaic.configs"))) / "dataset"
CHOICES = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
EVALSETS = sorted(p.stem for p in (CONFIG_DIR / "eval").glob("*.yaml"))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A stand-in for ../shared/data: bundled images copied into the named folders, plus a
    raw-teacher shard folder built from one DNG and its top200_sharp.json."""
    root = tmp_path_factory.mktemp("data")
    train = sorted((SAMPLES_DIR / "train").iterdir())
    val = sorted((SAMPLES_DIR / "val").glob("*.png"))
    for name, files in {"cbsd432": train[:2], "sun_hays80": train[2:3], "cbsd68": val,
                        "kodak24": val[:1], "mcmaster": val[1:]}.items():
        (root / name).mkdir()
        for f in files:
            shutil.copy(f, root / name / f.name)
    raws = root / "raws"
    raws.mkdir()
    yy, xx = np.mgrid[0:216, 0:222]
    rgb = np.stack([0.3 + 0.2 * np.sin(xx / 5), 0.4 + 0.2 * np.cos(yy / 7), 0.3 + 0 * xx])
    idx = np.tile(cfa.XTRANS.array, (36, 37))
    write_dng(raws / "a.dng", np.take_along_axis(rgb, idx[None], 0)[0], cfa.XTRANS)
    build_raw_teacher(raws, root / "raw_teacher", factor=2, algorithm="linear", progress=False)
    rank_sharpness(root / "raw_teacher", top=200)
    return root


def _check(sample, pattern, camera=False):
    """The sample contract; without a camera the mosaic is exactly the sampled target, with
    one (noise, quantisation) it stays close to it and is still white-balanced like it."""
    t = sample["target"]
    assert t.dtype == torch.float32 and t.ndim == 3 and t.shape[0] == 3
    assert t.shape[1] % 6 == 0 and t.shape[2] % 6 == 0
    m = torch.from_numpy(cfa.mask(pattern, *t.shape[1:]))
    assert torch.equal(sample["mask"], m)
    sampled = (t * m).sum(0)
    if not camera:
        assert torch.equal(sample["cfa"][0], sampled)
    else:
        assert torch.isfinite(sample["cfa"]).all()
        assert not torch.equal(sample["cfa"][0], sampled)
        assert (sample["cfa"][0] - sampled).abs().mean() < 0.05


def test_expected_choices_exist():
    assert {"synthetic", "cbsd432", "fullres", "torture", "raw_teacher", "mixed"} <= set(CHOICES)
    assert EVALSETS == ["bundled", "cbsd68", "kodak24", "mcmaster"]


@pytest.mark.parametrize("choice", CHOICES)
def test_dataset_config_builds(choice, data_root, monkeypatch):
    monkeypatch.setenv("DEMOSAIC_DATA", str(data_root))
    cfg = load_dataset_config(choice)
    assert set(cfg) == {"train", "val"}
    train = build_dataset(cfg["train"], pattern="xtrans", split="train", seed=0)
    val = build_dataset(cfg["val"], pattern="xtrans", split="val", seed=0)
    assert len(train) > 0 and len(val) > 0
    assert hasattr(train, "set_epoch") and train.patch_size % 6 == 0
    for i in (0, len(train) - 1):
        _check(train[i], "xtrans", camera=_camera_on(train, i))
    _check(val[0], "xtrans", camera=_camera_on(val, 0))


def _camera_on(ds, index):
    """Whether item ``index`` of a dataset (a mixture: of its component) simulates a camera."""
    if hasattr(ds, "component_of"):
        ds = ds.datasets[ds.component_of(index)]
    return getattr(ds, "camera", None) is not None


@pytest.mark.parametrize("evalset", EVALSETS)
def test_eval_set_configs_build(evalset, data_root, monkeypatch):
    monkeypatch.setenv("DEMOSAIC_DATA", str(data_root))
    cfg = load_dataset_config(f"eval/{evalset}")
    assert cfg["name"] == "folder"
    ds = build_dataset(cfg, pattern="xtrans", split="val")
    s = ds[0]
    _check(s, "xtrans")
    assert s["name"] == ds.files[0].stem


def test_data_root_defaults_to_shared_and_missing_folder_is_explained(monkeypatch, tmp_path):
    monkeypatch.delenv("DEMOSAIC_DATA", raising=False)
    cfg = load_dataset_config("cbsd432")
    assert cfg["train"]["root"] == ["../shared/data/cbsd432", "../shared/data/sun_hays80"]
    monkeypatch.chdir(tmp_path)  # ../shared/data does not exist from here
    with pytest.raises(ConfigError) as exc:
        build_dataset(cfg["train"], pattern="xtrans", split="train", seed=0)
    msg = str(exc.value)
    assert "dataset.train.root[0]" in msg and "DEMOSAIC_DATA" in msg
    assert "'../shared/data/cbsd432'" in msg and str(tmp_path / "../shared/data/cbsd432") in msg
    with pytest.raises(ConfigError, match="not found"):
        load_dataset_config("nope")


def test_bundled_samples_are_small_and_not_test_images():
    files = [p for p in SAMPLES_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 3 * 2**20
    assert len(list((SAMPLES_DIR / "train").glob("*.jpg"))) == 8
    assert len(list((SAMPLES_DIR / "val").glob("*.png"))) == 2
    assert (SAMPLES_DIR / "README.md").is_file()
    shared = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    test_hashes = set()
    for name in ("kodak24", "mcmaster"):
        manifest = shared / f"{name}.sha256"
        if manifest.is_file():
            test_hashes |= {line.split()[0] for line in manifest.read_text().splitlines() if line}
    for p in files:
        assert hashlib.sha256(p.read_bytes()).hexdigest() not in test_hashes, p
