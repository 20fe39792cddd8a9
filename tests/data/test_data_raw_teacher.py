"""Raw-teacher shards end to end on DNGs written by demosaic.io.dng: LibRaw teacher on the
mosaic's scale, honest algorithm record, corrupt files skipped and reported, resume,
parallel workers, both pairings, sharpness ranking and selection, the CLI."""

import json

import numpy as np
import pytest
import torch

from demosaic import cfa
from demosaic.data import build_dataset
from demosaic.data.shards import build_raw_teacher, laplacian_variance, rank_sharpness
from demosaic.data.teacher import compute_teacher, effective_algorithm, sample_fidelity
from demosaic.errors import ConfigError, RawReadError
from demosaic.io.dng import write_dng
from demosaic.io.raw import read_raw

H, W = 120, 138


def _scene(h, w, sharp):
    """(3, h, w) linear test scene: smooth gradients, or fine texture when ``sharp``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if sharp:
        rng = np.random.default_rng(1)
        tex = rng.random((h, w)).astype(np.float32)
        return np.stack([0.2 + 0.6 * tex, 0.3 + 0.4 * ((xx // 2 + yy // 2) % 2),
                         0.5 - 0.3 * tex]).astype(np.float32)
    return np.stack([0.3 + 0.2 * np.sin(xx / 11), 0.4 + 0.3 * np.cos(yy / 13),
                     0.25 + 0.1 * np.sin((xx + yy) / 17)]).astype(np.float32)


def _write(path, rgb, layout, **kw):
    h, w = rgb.shape[1:]
    p = layout.shape[0]
    idx = np.tile(layout, (-(-h // p), -(-w // p)))[:h, :w]
    mosaic = np.take_along_axis(rgb, idx[None], 0)[0]
    write_dng(path, mosaic, layout, black_level=512, white_level=16383, **kw)


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("raws")
    _write(d / "smooth.dng", _scene(H, W, False), cfa.XTRANS.shifted(2, 3), margins=(8, 10, 4, 6))
    sub = d / "day2"
    sub.mkdir()
    _write(sub / "sharp.dng", _scene(H, W, True), cfa.XTRANS.shifted(5, 1), margins=(0, 0, 0, 0))
    (d / "broken.raf").write_bytes(np.random.default_rng(0).bytes(5000))  # corrupt raw
    (d / "notes.txt").write_text("not a raw; ignored by extension")
    return d


@pytest.fixture(scope="module")
def shards(raw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "ds"
    report = build_raw_teacher(raw_dir, out, factor=2, algorithm="dht", progress=False)
    return out, report


def test_effective_algorithm_mapping():
    assert effective_algorithm("DHT", "xtrans") == "markesteijn3"
    assert effective_algorithm("aahd", "xtrans") == "markesteijn3"
    assert effective_algorithm("ppg", "xtrans") == "markesteijn1"
    assert effective_algorithm("vng", "xtrans") == "vng"
    assert effective_algorithm("linear", "xtrans") == "bilinear"
    assert effective_algorithm("dht", "bayer") == "dht"
    with pytest.raises(ConfigError, match="amaze"):
        effective_algorithm("amaze", "bayer")


def test_teacher_is_on_the_mosaic_scale_unpadded(tmp_path):
    """A file of >= 512 px goes to LibRaw directly: its output / 65535 matches the
    normalised mosaic at every sampled position (black 512, white 16383 in the file)."""
    rgb = _scene(516, 522, False)
    rgb[:, 40:80, 40:80] *= 3  # clipped highlight: LibRaw clips the teacher at 1.0
    _write(tmp_path / "big.dng", rgb, cfa.XTRANS.shifted(1, 4), margins=(6, 4, 2, 2))
    raw = read_raw(tmp_path / "big.dng")
    teacher, info = compute_teacher(tmp_path / "big.dng", raw, "linear")
    assert info["padded_to"] is None and info["algorithm"] == "bilinear"
    assert teacher.shape == (516, 522, 3) and teacher.max() <= 1.0
    fid = sample_fidelity(teacher, raw.cfa, raw.layout)
    assert fid["max_abs"] < 1e-4 and abs(fid["median_ratio"] - 1) < 1e-3


def test_build_reports_corrupt_file_and_records_the_teacher(shards):
    out, report = shards
    assert len(report.built) == 2 and report.skipped == []
    assert [f["source"] for f in report.failed] == ["broken.raf"]
    assert "broken.raf" in report.failed[0]["error"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failed"][0]["source"] == "broken.raf"
    assert manifest["teacher_algorithms"] == ["markesteijn3"]
    items = {it["source"]: it for it in manifest["items"]}
    assert set(items) == {"smooth.dng", "day2/sharp.dng"}
    it = items["smooth.dng"]
    assert it["teacher"]["requested"] == "dht" and it["teacher"]["algorithm"] == "markesteijn3"
    assert it["teacher"]["replaced"] is True and it["teacher"]["padded_to"] == [512, 512]
    assert it["teacher"]["fidelity"]["mean_abs"] < 1e-4
    assert it["family"] == "xtrans" and it["phase"]["canonical"] == "xtrans"
    al = cfa.align(np.asarray(it["phase"]["observed"]))
    assert (al.dy, al.dx) == (it["phase"]["dy"], it["phase"]["dx"]) != (0, 0)
    assert it["levels"] == {"black": [512.0] * 4, "white": 16383.0}
    assert len(it["wb"]) == 3 and it["camera"]["make"]
    assert 0.2 < it["exposure"]["mean"] < 0.6 and it["exposure"]["clipped_fraction"] == 0
    # downsample x2 of the aligned 120x138 -> trimmed to multiples of 6
    dy, dx = it["phase"]["dy"], it["phase"]["dx"]
    assert it["shape"] == [(H - dy) // 2 // 6 * 6, (W - dx) // 2 // 6 * 6]
    arr = np.load(out / it["files"]["target"])
    assert arr.dtype == np.float16 and arr.shape == (3, *it["shape"])
    assert it["files"]["cfa"] is None
    assert items["day2/sharp.dng"]["sharpness"] > 5 * it["sharpness"]


def test_downsample_target_matches_the_scene(shards):
    """The stored target is the box-filtered teacher, in canonical phase: compare with the
    box-filtered ground-truth scene (cropped by the same alignment)."""
    out, _ = shards
    manifest = json.loads((out / "manifest.json").read_text())
    it = next(i for i in manifest["items"] if i["source"] == "smooth.dng")
    scene = _scene(H, W, False)[:, it["phase"]["dy"]:, it["phase"]["dx"]:]
    h, w = it["shape"]
    box = scene[:, : 2 * h, : 2 * w].reshape(3, h, 2, w, 2).mean(axis=(2, 4))
    target = np.load(out / it["files"]["target"]).astype(np.float32)
    err = np.abs(target - box)[:, 3:-3, 3:-3]
    assert err.mean() < 0.01


def test_resume_skips_done_files(shards, raw_dir):
    out, _ = shards
    again = build_raw_teacher(raw_dir, out, factor=2, algorithm="dht", progress=False)
    assert again.built == [] and len(again.skipped) == 2 and len(again.failed) == 1
    # Simulate an interruption before one file finished: its record is missing.
    manifest = json.loads((out / "manifest.json").read_text())
    victim = manifest["items"][0]["id"]
    (out / "items" / f"{victim}.json").unlink()
    resumed = build_raw_teacher(raw_dir, out, factor=2, algorithm="dht", progress=False)
    assert resumed.built == [victim] and len(resumed.skipped) == 1
    assert len(json.loads((out / "manifest.json").read_text())["items"]) == 2
    assert not list(out.rglob(".*"))  # no temporary files left
    with pytest.raises(ConfigError, match="other settings"):
        build_raw_teacher(raw_dir, out, factor=4, algorithm="dht", progress=False)


def test_downsample_dataset_samples_are_exact(shards):
    out, _ = shards
    for pattern in ("xtrans", "bayer_rggb"):
        ds = build_dataset({"name": "raw_teacher", "root": str(out), "patch_size": 24,
                            "samples_per_epoch": 16, "exposure_range": [0.5, 2.0]},
                           pattern=pattern, split="train", seed=0)
        assert ds.pairing == "downsample"
        for i in range(len(ds)):
            s = ds[i]
            assert s["cfa"].shape == (1, 24, 24)
            m = torch.from_numpy(cfa.mask(pattern, 24, 24))
            assert torch.equal(s["mask"], m)
            assert torch.equal(s["cfa"][0], (s["target"] * m).sum(0))


def test_native_pairing_parallel_build_and_canonical_samples(raw_dir, tmp_path):
    out = tmp_path / "native"
    report = build_raw_teacher(raw_dir, out, pairing="native", algorithm="ppg", workers=2,
                               progress=False)
    assert len(report.built) == 2 and len(report.failed) == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["teacher_algorithms"] == ["markesteijn1"]
    it = manifest["items"][0]
    mosaic = np.load(out / it["files"]["cfa"]).astype(np.float32)
    target = np.load(out / it["files"]["target"]).astype(np.float32)
    assert mosaic.shape == (1, *it["shape"]) and target.shape == (3, *it["shape"])
    # stored in canonical phase: the real mosaic equals the teacher at canonical positions
    m = cfa.mask("xtrans", *it["shape"])
    np.testing.assert_allclose(mosaic[0], (target * m).sum(0), atol=2e-3)

    ds = build_dataset({"name": "raw_teacher", "root": str(out), "patch_size": 24,
                        "samples_per_epoch": 24}, pattern="xtrans", split="train", seed=1)
    for i in range(len(ds)):
        s = ds[i]
        assert s["cfa"].shape == (1, 24, 24) and s["target"].shape == (3, 24, 24)
        # after flips/rotations and the crop back to canonical phase, the real mosaic still
        # sits on the canonical X-Trans positions of the teacher
        diff = (s["cfa"][0] - (s["target"] * s["mask"]).sum(0)).abs()
        assert diff.max() < 2e-3
    with pytest.raises(ConfigError, match="canonical"):
        build_dataset({"name": "raw_teacher", "root": str(out)}, pattern="bayer_rggb",
                      split="train", seed=0)


def test_sharpness_ranking_and_selection(shards, tmp_path):
    out, _ = shards
    path = rank_sharpness(out, top=1)
    assert path == out / "top1_sharp.json"
    top = json.loads(path.read_text())
    assert [it["source"] for it in top["items"]] == ["day2/sharp.dng"]
    ds = build_dataset({"name": "raw_teacher", "root": str(out), "select": "top1_sharp.json",
                        "patch_size": 24, "samples_per_epoch": 4}, pattern="xtrans",
                       split="train", seed=0)
    assert [it["source"] for it in ds.items] == ["day2/sharp.dng"]
    # a plain list of source names works too, from the working directory
    sel = tmp_path / "pick.json"
    sel.write_text(json.dumps(["smooth.dng"]))
    ds = build_dataset({"name": "raw_teacher", "root": str(out), "select": str(sel),
                        "patch_size": 24}, pattern="xtrans", split="train", seed=0)
    assert [it["source"] for it in ds.items] == ["smooth.dng"]
    sel.write_text(json.dumps(["nothing.dng"]))
    with pytest.raises(ConfigError, match="select"):
        build_dataset({"name": "raw_teacher", "root": str(out), "select": str(sel)},
                      pattern="xtrans", split="train", seed=0)


def test_laplacian_variance_ignores_exposure():
    rgb = _scene(60, 60, True)
    assert laplacian_variance(rgb * 4) == pytest.approx(laplacian_variance(rgb), rel=1e-3)
    assert laplacian_variance(_scene(60, 60, False)) < laplacian_variance(rgb)


def test_cli_builds_and_ranks(raw_dir, tmp_path, caplog):
    from demosaic.cli import prepare

    out = tmp_path / "cli"
    prepare.main(["raw_teacher", f"source={raw_dir}", f"out={out}", "algorithm=linear",
                  "factor=3", "extensions=[.dng]", "progress=false"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["items"]) == 2 and manifest["failed"] == []  # .raf not scanned
    assert manifest["teacher_algorithms"] == ["bilinear"]
    prepare.main(["sharpness", f"root={out}", "top=5", f"out={tmp_path / 'top.json'}"])
    assert len(json.loads((tmp_path / "top.json").read_text())["items"]) == 2
    with pytest.raises(SystemExit) as exc:
        prepare.main(["raw_teacher", f"out={out}"])
    assert exc.value.code == 2
    assert "source=" in caplog.text
    with pytest.raises(SystemExit):
        prepare.main(["raw_teacher", f"source={raw_dir}", f"out={out}", "factr=2"])
    assert "factr" in caplog.text


def test_corrupt_file_error_is_a_raw_read_error(raw_dir):
    with pytest.raises(RawReadError, match="broken.raf"):
        read_raw(raw_dir / "broken.raf")


def test_missing_root_errors(tmp_path):
    with pytest.raises(ConfigError, match="required"):
        build_dataset({"name": "raw_teacher"}, pattern="xtrans", split="train", seed=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="manifest"):
        build_dataset({"name": "raw_teacher", "root": str(tmp_path / "empty")},
                      pattern="xtrans", split="train", seed=0)
    with pytest.raises(ConfigError, match="source"):
        build_raw_teacher(tmp_path / "nope", tmp_path / "o", progress=False)


@pytest.mark.parametrize("argv, named", [
    (["raw_teacher", "source=x"], "out=..."),
    (["raw_teacher"], "source=..., out=..."),
    (["sharpness"], "root=..."),
    (["torture", "count=3"], "out=..."),
])
def test_prepare_names_its_missing_keys(argv, named):
    """Required keys are declared once, as MISSING in each mode's dataclass."""
    from demosaic.cli.prepare import parse

    with pytest.raises(ConfigError, match=f"missing {named}"):
        parse(argv)
    mode, args = parse(argv + [f"{k.rstrip('=.')}=d" for k in named.split(", ")])
    assert mode == argv[0] and all(getattr(args, k.rstrip("=.")) == "d" for k in named.split(", "))
