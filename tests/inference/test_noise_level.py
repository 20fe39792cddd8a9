"""Where a file's noise level comes from, and what --noise and --denoise do on the user's path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from demosaic.errors import ConfigError
from demosaic.inference.run import infer_file
from demosaic.io.images import read_exr
from demosaic.io.raw import read_raw
from demosaic.models import create_model
from demosaic.models.checkpoint import make_checkpoint, save_checkpoint
from demosaic.noise import source
from demosaic.noise.profile import NoiseProfile

from conftest import run_infer


@pytest.fixture(scope="module")
def noise_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small noise-aware X-Trans U-Net whose noise branches are not zero."""
    torch.manual_seed(3)
    kwargs = dict(cfa="xtrans", packing=3, width=8, depth=3, noise_input=True)
    model = create_model("unet", **kwargs)
    with torch.no_grad():
        model.noise_stem.weight.normal_(0, 2.0)
        model.sample_head.weight.normal_(0, 0.2)
    path = tmp_path_factory.mktemp("noise_ckpt") / "noise.pt"
    save_checkpoint(make_checkpoint(model, "unet", kwargs, cfa="xtrans", step=1), path)
    return path


def test_noise_profile_parses_two_or_six_numbers_and_names_the_flag():
    p = NoiseProfile.parse("2e-4,1e-7")
    assert p.scale == (2e-4,) * 3 and p.offset == (1e-7,) * 3 and p.source == "user"
    q = NoiseProfile.parse("1e-4,1e-8,2e-4,2e-8,3e-4,3e-8")
    assert q.scale == (1e-4, 2e-4, 3e-4) and q.offset == (1e-8, 2e-8, 3e-8)
    assert q.as_list() == [1e-4, 1e-8, 2e-4, 2e-8, 3e-4, 3e-8]
    for bad in ("abc", "1,2,3", "-1,0", "nan,1", ""):
        with pytest.raises(ConfigError, match="--noise"):
            NoiseProfile.parse(bad)
    # balanced: variance of a balanced pixel m x is m^2 (S x + O) = (m S) y + m^2 O
    b = NoiseProfile.uniform(1e-3, 1e-6).balanced([2.0, 1.0, 1.5])
    np.testing.assert_allclose(b, [[2e-3, 1e-3, 1.5e-3], [4e-6, 1e-6, 2.25e-6]], rtol=1e-6)


def test_bad_noise_or_denoise_fail_before_any_work(tmp_path, camera_dngs):
    out = tmp_path / "out.exr"
    assert run_infer(camera_dngs[0], out, "--noise", "1,2,3") != 0
    assert run_infer(camera_dngs[0], out, "--denoise", "-1") != 0
    assert not out.exists() and not list(tmp_path.iterdir())


def test_the_level_comes_from_the_flag_else_the_file_else_the_estimate(camera_dngs, monkeypatch):
    raw = read_raw(camera_dngs[0])
    user = NoiseProfile.uniform(1e-3, 1e-6)
    calls = []

    def fake_estimate(cfa, layout, **_):
        calls.append(cfa.shape)
        return NoiseProfile.uniform(5e-4, 2e-7, "estimated")

    monkeypatch.setattr(source, "estimate_noise", fake_estimate)
    assert source.file_profile(raw, user) is user and not calls
    tagged = source.file_profile(raw)
    assert calls == [raw.cfa.shape] and tagged.source == "estimated"
    # a DNG NoiseProfile wins over the estimate
    from dataclasses import replace

    from_dng = replace(raw, noise_profile=NoiseProfile.uniform(7e-4, 3e-7, "dng"))
    assert source.file_profile(from_dng).source == "dng" and len(calls) == 1


def test_the_level_and_strength_are_in_the_header_and_change_the_output(
        tmp_path, camera_dngs, noise_checkpoint):
    outs = {}
    for name, kw in {"est": {}, "user": {"noise": "1e-3,1e-6"}, "zero": {"denoise": 0.0},
                     "half": {"noise": "1e-3,1e-6", "denoise": 0.5}}.items():
        out = tmp_path / f"{name}.exr"
        infer_file(camera_dngs[0], out, checkpoint=noise_checkpoint, device="cpu", **kw)
        outs[name] = read_exr(out)
    settings = json.loads(outs["est"][1]["demosaic:settings"])
    assert settings["noise_source"] == "estimated" and settings["denoise"] == 1.0
    assert len(settings["noise_profile"]) == 6 and max(settings["noise_profile"]) > 0
    assert "(estimated)" in outs["est"][1]["demosaic:noise"]
    user = json.loads(outs["user"][1]["demosaic:settings"])
    assert user["noise_source"] == "user" and user["noise_profile"] == [1e-3, 1e-6] * 3
    # a different level, or strength, gives a different picture; strength 0.5 with S, O is
    # strength 1 with S / 4, O / 4 (up to 1 the map scales by the strength)
    assert np.abs(outs["user"][0] - outs["est"][0]).max() > 1e-4
    assert np.abs(outs["zero"][0] - outs["est"][0]).max() > 1e-4
    out = tmp_path / "quarter.exr"
    infer_file(camera_dngs[0], out, checkpoint=noise_checkpoint, device="cpu", noise="2.5e-4,2.5e-7")
    np.testing.assert_allclose(read_exr(out)[0], outs["half"][0], rtol=2e-3, atol=2e-3)


def test_a_model_without_the_input_ignores_the_level(tmp_path, camera_dngs, caplog, monkeypatch):
    torch.manual_seed(4)
    kwargs = dict(cfa="xtrans", packing=3, width=8, depth=3)
    ckpt = save_checkpoint(make_checkpoint(create_model("unet", **kwargs), "unet", kwargs,
                                           cfa="xtrans", step=1), tmp_path / "plain.pt")
    a, b = tmp_path / "a.exr", tmp_path / "b.exr"
    assert run_infer(camera_dngs[0], a, "--checkpoint", ckpt) == 0
    assert run_infer(camera_dngs[0], b, "--checkpoint", ckpt, "--denoise", "0",
                     "--noise", "1e-3,1e-6") == 0
    (img_a, meta_a), (img_b, _) = read_exr(a), read_exr(b)
    assert "demosaic:noise" not in meta_a
    np.testing.assert_array_equal(img_a, img_b)
    # ... and says so once, naming the noise-aware model (not when neither flag is given)
    from demosaic.inference import run as run_mod

    monkeypatch.setattr(run_mod, "_TOLD_IGNORED", set())
    caplog.set_level("WARNING", logger="demosaic")
    caplog.clear()
    infer_file(camera_dngs[0], tmp_path / "c.exr", checkpoint=ckpt)
    assert "ignored" not in caplog.text
    infer_file(camera_dngs[0], tmp_path / "d.exr", checkpoint=ckpt, denoise=2.0)
    infer_file(camera_dngs[0], tmp_path / "e.exr", checkpoint=ckpt, noise="1e-3,1e-6")
    told = [r for r in caplog.records if "--denoise ignored" in r.getMessage()]
    assert len(told) == 1 and "xtrans.denoise" in told[0].getMessage()
