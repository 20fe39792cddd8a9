"""The shipped model is chosen by each file's CFA family (issue "Every camera out of the box"):
X-Trans, the four Bayer phases, files with margins, a mixed folder; a user checkpoint of the
wrong family still gets the clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from demosaic import cfa as C
from demosaic.models.checkpoint import make_checkpoint, save_checkpoint
from demosaic.inference.batch import infer_batch
from demosaic.inference.run import infer_file
from demosaic.models.zoo import SHIPPED_CHECKPOINTS, ModelSource
from demosaic.sim.scenes import synthetic_scene
from demosaic.errors import CFAError, CheckpointError
from demosaic.io.dng import write_dng
from demosaic.io.images import read_exr
from demosaic.models import create_model

H, W = 48, 60


def _ckpt(folder: Path, cfa: str, name: str) -> Path:
    torch.manual_seed(0)
    model = create_model("unet", cfa=cfa, width=8, depth=1)
    return save_checkpoint(make_checkpoint(model, "unet", model.spec["kwargs"], cfa=cfa,
                                           run_name=name), folder / f"{name}.pt")


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("assets")
    return {"xtrans": _ckpt(folder, "xtrans", "v0.1_xtrans"),
            "bayer": _ckpt(folder, "bayer_rggb", "v0.1_bayer")}


@pytest.fixture(autouse=True)
def _use_shipped(shipped: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    for family, path in shipped.items():
        monkeypatch.setitem(SHIPPED_CHECKPOINTS, family, path)


def _dng(path: Path, layout: np.ndarray, margins: tuple[int, int, int, int]) -> Path:
    truth = synthetic_scene(H, W, seed=1) * np.float32(0.5)
    pattern = C.CFAPattern("observed", "xtrans" if layout.shape[0] == 6 else "bayer",
                           tuple(map(tuple, layout.tolist())))
    return write_dng(path, C.mosaic(truth, pattern)[0], layout, black_level=256,
                     white_level=4095, margins=margins)


CASES = {
    "xtrans": (C.XTRANS.shifted(2, 3), (4, 7, 2, 3)),
    "rggb": (C.BAYER_RGGB.shifted(0, 0), (0, 0, 0, 0)),
    "grbg": (C.BAYER_RGGB.shifted(0, 1), (2, 4, 2, 2)),
    "gbrg": (C.BAYER_RGGB.shifted(1, 0), (4, 2, 0, 2)),
    "bggr": (C.BAYER_RGGB.shifted(1, 1), (6, 8, 4, 2)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_shipped_model_of_the_files_family_is_used(case: str, tmp_path: Path) -> None:
    layout, margins = CASES[case]
    src = _dng(tmp_path / f"{case}.dng", layout, margins)
    out = infer_file(src, tmp_path / f"{case}.exr", device="cpu").output
    img, meta = read_exr(out)
    family = "xtrans" if case == "xtrans" else "bayer"
    assert meta["demosaic:checkpoint"] == f"v0.1_{family}.pt"
    assert img.shape == (3, H, W) and np.isfinite(img).all()


def test_a_mixed_folder_uses_both_models(tmp_path: Path) -> None:
    folder = tmp_path / "raws"
    folder.mkdir()
    for case in ("xtrans", "grbg", "bggr"):
        _dng(folder / f"{case}.dng", *CASES[case])
    result = infer_batch(folder, tmp_path / "out", device="cpu", progress=False)
    assert not result.failed and len(result.done) == 3
    used = {r.output.stem: read_exr(r.output)[1]["demosaic:checkpoint"] for r in result.done}
    assert used == {"xtrans": "v0.1_xtrans.pt", "grbg": "v0.1_bayer.pt", "bggr": "v0.1_bayer.pt"}


def test_an_explicit_checkpoint_must_match_the_file(shipped: dict[str, Path], tmp_path: Path) -> None:
    bayer = _dng(tmp_path / "bayer.dng", *CASES["gbrg"])
    out = tmp_path / "never.exr"
    with pytest.raises(CFAError, match="Bayer sensor.*X-Trans.*--checkpoint"):
        infer_file(bayer, out, checkpoint=shipped["xtrans"], device="cpu")
    assert not out.exists()


def test_a_family_without_a_shipped_model_says_what_to_do(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SHIPPED_CHECKPOINTS, "bayer", tmp_path / "missing.pt")
    source = ModelSource(device="cpu")  # the X-Trans model is there
    with pytest.raises(CheckpointError, match="ships no bayer model.*bilinear"):
        source.for_family("bayer", tmp_path / "x.dng")
    assert source.for_family("xtrans", tmp_path / "y.dng").pattern.family == "xtrans"


def test_demosaic_eval_runs_the_shipped_model_of_its_cfa(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_module

    from demosaic.cli import evaluate as cli_eval

    cli_eval.register_schemas()
    for cfa, expected in (("xtrans", "v0.1_xtrans"), ("bayer_rggb", "v0.1_bayer")):
        with initialize_config_module(config_module="demosaic.configs", version_base=None):
            cfg = compose(config_name="eval", overrides=[
                "evalset=bundled", f"cfa={cfa}", "compare=[]", "progress=false",
                "worst_crops=0", "hdr_gain=0", "evalset.max_images=1",
                f"out_dir={tmp_path / cfa}", f"runs_dir={tmp_path / 'runs'}"])
        res = cli_eval.run_evaluation(cfg, "bundled")
        assert res.method == expected and res.kind == "checkpoint"


def test_tags_name_the_packaged_weights_and_fix_the_family(shipped: dict[str, Path],
                                                          tmp_path: Path) -> None:
    """``xtrans.default`` / ``bayer.default`` are the packaged models as run without a model,
    resolvable wherever a model name is (zoo, demosaic-infer --model, demosaic-eval model=);
    a tag of another family than the file's or the ``cfa`` is refused with the fix."""
    from demosaic.cli.infer import build_parser
    from demosaic.errors import ConfigError
    from demosaic.models.zoo import MODEL_NAMES, TAGS, method_from_config, resolve_method

    assert {"xtrans.default", "xtrans.quality", "bayer.default"} <= set(TAGS) <= set(MODEL_NAMES)
    assert resolve_method(model="bayer.default").info["checkpoint"] == str(shipped["bayer"])
    assert resolve_method(model="xtrans.default", cfa="xtrans").name == "v0.1_xtrans"
    assert method_from_config({"model": "bayer.default", "cfa": "bayer_rggb"}).name == "v0.1_bayer"
    with pytest.raises(ConfigError, match="bayer.default demosaics Bayer.*cfa=bayer_rggb"):
        method_from_config({"model": "bayer.default", "cfa": "xtrans"})
    views = resolve_method(model={"name": "bayer.default", "views": 2})
    assert views.info["model"]["views"] == 2 and views.demosaicker.pattern.family == "bayer"
    assert build_parser().parse_args(["a.raf", "b.exr", "--model", "xtrans.quality"]).model \
        == "xtrans.quality"
    bayer = _dng(tmp_path / "bayer.dng", *CASES["gbrg"])
    img, meta = read_exr(infer_file(bayer, tmp_path / "b.exr", model="bayer.default",
                                    device="cpu").output)
    ref, ref_meta = read_exr(infer_file(bayer, tmp_path / "r.exr", device="cpu").output)
    assert np.array_equal(img, ref) and meta["demosaic:model"] == ref_meta["demosaic:model"]
    with pytest.raises(CFAError, match="Bayer sensor.*X-Trans"):
        infer_file(bayer, tmp_path / "never.exr", model="xtrans.default", device="cpu")
