"""Training: every experiment composes and trains a few steps on tiny data; exact resume,
NaN guard, Ctrl-C, fine-tune errors, schema errors, freezing, EWC, multirun and DDP."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from demosaic.cfa import mosaic
from demosaic.cli.train import run_training
from demosaic.data import DATASETS
from demosaic.models.checkpoint import load_checkpoint, load_model, make_checkpoint, save_checkpoint
from demosaic.training.loop import TrainingDiverged
from demosaic.training.schedule import lr_factor
from demosaic.errors import CheckpointError, ConfigError
from demosaic.models import create_model

from conftest import compose_train, tiny_training

ROOT = Path(__file__).resolve().parents[2]
#: The roots of the experiment group (configs/experiment/README.md): the research log's
#: experiments, the shipped models' stages, the candidates that lost their rules.
EXPERIMENT_DIRS = [ROOT / "configs" / "experiment", ROOT / "configs" / "lineage" / "experiment",
                   ROOT / "configs" / "candidates" / "experiment"]
EXPERIMENT_FILES = {p.stem: p for d in EXPERIMENT_DIRS for p in d.glob("*.yaml")}
EXPERIMENTS = sorted(EXPERIMENT_FILES)
SAMPLES = ROOT / "src" / "demosaic" / "assets" / "samples"


tiny = tiny_training


SMALL_DATA = ["dataset.train.patch_size=24"]


def shrink_data(cfg, raw_shards: Path) -> None:
    """Point every dataset of a composed config at tiny local data, in place."""
    OmegaConf.set_struct(cfg, False)
    def fix(node) -> None:
        name = node.get("name")
        if name in ("synthetic", "folder") and node.get("root") is not None:
            node.root = str(SAMPLES / ("val" if name == "folder" else "train"))
        if name == "raw_teacher":
            node.root = str(raw_shards)
            if node.get("select"):
                node.select = str(raw_shards / "top200_sharp.json")
        if "patch_size" in node:
            node.patch_size = 48
        if name == "folder":
            node.max_size = 96
        if name == "torture":
            node.count = 8
        if name == "mixture":
            for comp in node.components:
                fix(comp.dataset)
    fix(cfg.dataset.train)
    fix(cfg.dataset.val)


@pytest.fixture(scope="module")
def raw_shards(tmp_path_factory) -> Path:
    """Raw-teacher shards built from two small X-Trans DNGs (non-canonical phase, margins)."""
    from demosaic import cfa
    from demosaic.data.shards import build_raw_teacher, rank_sharpness
    from demosaic.io.dng import write_dng

    src = tmp_path_factory.mktemp("raws")
    rng = np.random.default_rng(0)
    for i, (dy, dx) in enumerate([(1, 2), (4, 5)]):
        layout = cfa.XTRANS.shifted(dy, dx)
        rgb = rng.uniform(0.05, 0.9, size=(3, 204, 240)).astype(np.float32)
        rgb = (rgb + np.roll(rgb, 1, 1) + np.roll(rgb, 1, 2)) / 3  # some correlation
        idx = np.tile(layout, (34, 40))
        write_dng(src / f"f{i}.dng", np.take_along_axis(rgb, idx[None], 0)[0], layout,
                  black_level=256, white_level=4095, margins=(2, 4, 0, 0))
    out = tmp_path_factory.mktemp("shards") / "raw_teacher"
    build_raw_teacher(src, out, factor=2, algorithm="dht", progress=False)
    rank_sharpness(out, top=1, out=out / "top200_sharp.json")
    return out


@pytest.fixture(scope="module")
def v4_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of the default model, standing in for v4's best.pt in fine-tune tests."""
    cfg = compose_train([])
    model_cfg = OmegaConf.to_container(cfg.model)
    name = model_cfg.pop("name")
    model = create_model(name, **model_cfg)
    path = tmp_path_factory.mktemp("v4") / "best.pt"
    save_checkpoint(make_checkpoint(model, name, model_cfg, cfa=model.pattern.name, step=7), path)
    return path


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_trains(experiment, tmp_path, raw_shards, v4_checkpoint):
    cfg = compose_train([f"+experiment={experiment}", *tiny(tmp_path)])
    shrink_data(cfg, raw_shards)
    if cfg.trainer.init_from:
        # A stand-in checkpoint: the X-Trans default where an X-Trans experiment grows it
        # (init_partial), else the experiment's own model (another CFA, or another size).
        init = v4_checkpoint
        model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
        name = model_cfg.pop("name")
        if model_cfg.get("cfa", "xtrans") != "xtrans" or not cfg.trainer.init_partial:
            model = create_model(name, **model_cfg)
            init = save_checkpoint(make_checkpoint(model, name, model_cfg, cfa=model.pattern.name,
                                                   step=7), tmp_path / "init.pt")
        cfg.trainer.init_from = str(init)
    result = run_training(cfg)
    assert result.step == 2
    run_dir = tmp_path / "ckpt" / cfg.trainer.run_name
    assert (run_dir / "best.pt").is_file() and (run_dir / "last.pt").is_file()
    assert (run_dir / "config.yaml").is_file()
    assert (tmp_path / "logs" / f"train_{cfg.trainer.run_name}.log").is_file()
    best = load_checkpoint(run_dir / "best.pt")
    assert best["config"]["trainer"]["run_name"] == cfg.trainer.run_name
    assert np.isfinite(result.best_metric)


def test_experiments_hold_only_deltas():
    for name in EXPERIMENTS:
        text = EXPERIMENT_FILES[name].read_text()
        assert text.startswith("# @package _global_"), name
        assert "run_name:" in text, name


def test_experiment_folders_are_one_group_on_the_search_path():
    """`+experiment=NAME` finds a file in any of the three folders: they are on train.yaml's
    search path, a name is in one folder only (Hydra would silently take the first), and the
    research log's experiments keep their folder."""
    searchpath = OmegaConf.load(ROOT / "configs" / "train.yaml").hydra.searchpath
    assert list(searchpath) == ["pkg://demosaic.configs.lineage", "pkg://demosaic.configs.candidates"]
    assert sum(len(list(d.glob("*.yaml"))) for d in EXPERIMENT_DIRS) == len(EXPERIMENTS)
    research_log = {"v3", "v4", "v4_ft", "torture", "v4_ssim", "fullres", "mixed", "quickstart"}
    assert research_log <= {p.stem for p in EXPERIMENT_DIRS[0].glob("*.yaml")}
    assert all(any(d.glob("*.yaml")) for d in EXPERIMENT_DIRS)
    for name in ("v4_ft", "xtrans_default_camera_keep_mix", "bayer_default_coarse4"):
        assert compose_train([f"+experiment={name}"]).trainer.run_name


def test_finetune_without_its_checkpoint_names_the_producer(tmp_path):
    cfg = compose_train(["+experiment=v4_ssim", *tiny(tmp_path)])
    cfg.trainer.init_from = str(tmp_path / "missing" / "best.pt")
    with pytest.raises(CheckpointError, match=r"demosaic-train \+experiment=v4"):
        run_training(cfg)


def test_schema_rejects_misspelt_keys_and_wrong_types(tmp_path):
    with pytest.raises(Exception, match="max_step"):
        compose_train(["trainer.max_step=3"])
    with pytest.raises(Exception, match="max_steps"):
        compose_train(["trainer.max_steps=many"])
    cfg = compose_train(tiny(tmp_path))
    OmegaConf.set_struct(cfg, False)
    cfg.model.widht = 3  # free-form group: caught by the registry before anything is built
    with pytest.raises(ConfigError, match=r"model\.widht"):
        run_training(cfg)
    cfg = compose_train(tiny(tmp_path))
    OmegaConf.set_struct(cfg, False)
    cfg.dataset.train.patch_sise = 48
    with pytest.raises(ConfigError, match=r"dataset\.train\.patch_sise"):
        run_training(cfg)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["state_dict"]


def test_resume_continues_exactly(tmp_path, monkeypatch):
    """Interrupt a run (Ctrl-C) after 3 of 6 steps, resume it, and compare with 6 straight steps."""
    from demosaic.training.data_order import StepIndexedDataset

    base = ["+experiment=quickstart", "dataset.train.patch_size=24", "trainer.ema_decay=0.9",
            "trainer.val_every=2"]
    full = tmp_path / "full"
    run_training(compose_train([*base, *tiny(full, steps=6)]))

    original = StepIndexedDataset.__getitem__

    def interrupt_at_step_4(self, g):
        if g >= 3 * 2:  # the first sample of step 4 (batch size 2)
            raise KeyboardInterrupt
        return original(self, g)

    part = tmp_path / "part"
    monkeypatch.setattr(StepIndexedDataset, "__getitem__", interrupt_at_step_4)
    first = run_training(compose_train([*base, *tiny(part, steps=6)]))
    assert first.interrupted and first.step == 3
    monkeypatch.setattr(StepIndexedDataset, "__getitem__", original)
    result = run_training(compose_train([*base, *tiny(part, steps=6), "trainer.resume=true"]))
    assert result.step == 6 and not result.interrupted
    a = _weights(full / "ckpt" / "quickstart" / "last.pt")
    b = _weights(part / "ckpt" / "quickstart" / "last.pt")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    ema_a = load_checkpoint(full / "ckpt" / "quickstart" / "last.pt")["ema_state_dict"]
    ema_b = load_checkpoint(part / "ckpt" / "quickstart" / "last.pt")["ema_state_dict"]
    for k in ema_a:
        torch.testing.assert_close(ema_a[k], ema_b[k], rtol=0, atol=0, msg=k)


def test_resume_keeps_this_devices_optimizer_kernel(tmp_path):
    """A last.pt whose optimizer groups carry another kernel choice (an older version, another
    device) resumes with the one this device gets (fused AdamW on the CPU)."""
    from demosaic.training import runtime

    base = ["+experiment=quickstart", "dataset.train.patch_size=24"]
    run_training(compose_train([*base, *tiny(tmp_path, steps=2)]))
    last = tmp_path / "ckpt" / "quickstart" / "last.pt"
    ckpt = load_checkpoint(last)
    for group in ckpt["train_state"]["optimizer"]["param_groups"]:
        group["fused"] = None
    save_checkpoint(ckpt, last)
    run_training(compose_train([*base, *tiny(tmp_path, steps=4), "trainer.resume=true"]))
    groups = load_checkpoint(last)["train_state"]["optimizer"]["param_groups"]
    fused = runtime.torch_version() >= runtime.FUSED_ADAMW_CPU_MIN_TORCH
    assert [bool(g.get("fused")) for g in groups] == [fused] * len(groups)


def test_resume_without_last_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="last.pt does not exist"):
        run_training(compose_train([*tiny(tmp_path), "trainer.resume=true"]))


# --- a dataset that misbehaves on purpose ----------------------------------------------


@dataclasses.dataclass
class _TrapConfig:
    poison_from: int = 10**9  # global sample index from which targets are NaN
    interrupt_at: int = 10**9  # global sample index that raises KeyboardInterrupt


class _Trap(torch.utils.data.Dataset):
    def __init__(self, poison_from: int, interrupt_at: int, pattern: str, **_):
        self.poison_from, self.interrupt_at, self.pattern = poison_from, interrupt_at, pattern
        self.calls = 0

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        self.calls += 1
        if self.calls > self.interrupt_at:
            raise KeyboardInterrupt
        rgb = torch.full((3, 24, 24), 0.5)
        if self.calls > self.poison_from:
            rgb = rgb * float("nan")
        return {"cfa": mosaic(rgb, self.pattern), "mask": torch.ones(3, 24, 24), "target": rgb}


if "_trap" not in DATASETS.names():
    DATASETS.register("_trap", _TrapConfig)(lambda **kw: _Trap(**kw))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = compose_train([*tiny(tmp_path, steps=6), "trainer.save_every=2"])
    OmegaConf.set_struct(cfg, False)
    cfg.dataset.train = {"name": "_trap", "poison_from": 2 * 3}  # batches 1-3 clean, then NaN
    cfg.dataset.val = {"name": "folder", "root": str(SAMPLES / "val"), "max_size": 48}
    with pytest.raises(TrainingDiverged, match="step 3") as exc:
        run_training(cfg)
    assert "kept" in str(exc.value)
    last = load_checkpoint(tmp_path / "ckpt" / "default" / "last.pt")
    assert last["step"] == 2
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())


def test_ctrl_c_saves_last_and_returns(tmp_path):
    cfg = compose_train([*tiny(tmp_path, steps=50)])
    OmegaConf.set_struct(cfg, False)
    cfg.dataset.train = {"name": "_trap", "interrupt_at": 2 * 3}
    cfg.dataset.val = {"name": "folder", "root": str(SAMPLES / "val"), "max_size": 48}
    result = run_training(cfg)
    assert result.interrupted and result.step == 3
    assert load_checkpoint(tmp_path / "ckpt" / "default" / "last.pt")["step"] == 3


def test_freeze_keeps_named_parts_fixed(tmp_path, v4_checkpoint):
    ckpt = load_checkpoint(v4_checkpoint)
    first = sorted({k.split(".")[0] for k in ckpt["state_dict"]})[0]
    cfg = compose_train([*tiny(tmp_path, steps=2), *SMALL_DATA, f"trainer.init_from={v4_checkpoint}",
                         f"trainer.freeze=[{first}]"])
    run_training(cfg)
    after = _weights(tmp_path / "ckpt" / "default" / "last.pt")
    changed = {k for k in after if not torch.equal(after[k], ckpt["state_dict"][k])}
    assert changed, "nothing trained"
    assert not any(k.startswith(first) for k in changed)
    with pytest.raises(ConfigError, match="no parameter name starts with 'nope'"):
        run_training(compose_train([*tiny(tmp_path), "trainer.freeze=[nope]"]))


def test_ewc_pulls_towards_the_starting_weights(tmp_path, v4_checkpoint):
    start = load_checkpoint(v4_checkpoint)["state_dict"]

    def drift(weight: float, where: Path) -> float:
        cfg = compose_train([*tiny(where, steps=4), *SMALL_DATA, f"trainer.init_from={v4_checkpoint}",
                             "trainer.optim.lr=5e-3", f"trainer.ewc_weight={weight}",
                             "trainer.ewc_batches=2"])
        run_training(cfg)
        end = _weights(where / "ckpt" / "default" / "last.pt")
        return float(sum(((end[k] - start[k]) ** 2).sum() for k in end if end[k].is_floating_point()))

    assert drift(1e4, tmp_path / "ewc") < drift(0.0, tmp_path / "plain")


def test_lr_schedule_warmup_then_cosine():
    assert lr_factor(0, 10, 110, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 110, 0.1) == pytest.approx(1.0)
    assert lr_factor(60, 10, 110, 0.1) == pytest.approx(0.55)
    assert lr_factor(110, 10, 110, 0.1) == pytest.approx(0.1)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.mark.slow
def test_console_script_multirun_sweep(tmp_path):
    out = subprocess.run(
        ["demosaic-train", "-m", "+experiment=quickstart", *tiny(tmp_path), "trainer.max_steps=1",
         "dataset.train.patch_size=24", "trainer.optim.lr=1e-3,3e-4",
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_env())
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "ckpt" / "quickstart_0" / "last.pt").is_file()
    assert (tmp_path / "ckpt" / "quickstart_1" / "last.pt").is_file()


def test_console_script_reports_bad_input_without_traceback(tmp_path):
    out = subprocess.run(["demosaic-train", "+experiment=v4_ft", *tiny(tmp_path),
                          f"trainer.init_from={tmp_path / 'nope.pt'}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_env())
    assert out.returncode == 2
    assert "demosaic-train +experiment=v4" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
         "-m", "demosaic.cli.train", "+experiment=quickstart", *tiny(tmp_path, steps=2),
         "dataset.train.patch_size=24", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_env())
    assert out.returncode == 0, out.stderr[-3000:]
    assert "world 2" in (tmp_path / "logs" / "train_quickstart.log").read_text()
    assert load_checkpoint(tmp_path / "ckpt" / "quickstart" / "last.pt")["step"] == 2


# --------------------------------------------------------------------------------------
# device-side batches, time budgets, grown networks
# --------------------------------------------------------------------------------------


def test_device_batches_train_and_are_recorded(tmp_path):
    # the camera simulation (on by default) has a batched twin on the device
    run_training(compose_train([*tiny(tmp_path / "c", steps=2), *SMALL_DATA,
                                "trainer.device_batches=true"]))
    cfg = compose_train([*tiny(tmp_path, steps=3), *SMALL_DATA, "trainer.device_batches=true",
                         "dataset.train.camera.enabled=false"])
    result = run_training(cfg)
    assert result.step == 3 and result.best_path is not None
    ckpt = load_checkpoint(result.best_path)
    assert ckpt["config"]["trainer"]["device_batches"] is True
    with pytest.raises(ConfigError, match="device_batches"):
        run_training(compose_train([*tiny(tmp_path / "t"), "dataset=torture", "dataset.val.root=null",
                                    "trainer.device_batches=true"]))


def test_max_minutes_stops_cleanly_with_checkpoints(tmp_path):
    cfg = compose_train([*tiny(tmp_path, steps=500), *SMALL_DATA, "trainer.max_minutes=1e-6"])
    result = run_training(cfg)
    assert result.step == 1 and not result.interrupted  # the first step at which time is read
    for name in ("best.pt", "last.pt"):
        ckpt = load_checkpoint(tmp_path / "ckpt" / "default" / name)
        assert ckpt["step"] == 1 and ckpt["config"]["trainer"]["stopped_by_time_at"] == 1
    with pytest.raises(ConfigError, match="fit_steps_to_time=true needs trainer.max_minutes"):
        run_training(compose_train([*tiny(tmp_path), "trainer.fit_steps_to_time=true"]))
    with pytest.raises(ConfigError, match="max_minutes=-1"):
        run_training(compose_train([*tiny(tmp_path), "trainer.max_minutes=-1"]))


def test_fit_steps_to_time_plans_the_schedule_from_the_measured_rate(monkeypatch):
    from demosaic.training import schedule
    from demosaic.training.config import TrainerConfig
    from demosaic.training.data_order import DistInfo

    t = TrainerConfig(max_steps=100_000, max_minutes=1.0, fit_steps_to_time=True)
    t.optim.warmup_steps = 50
    clock = schedule.RunClock(t, start=0.0)
    single = DistInfo()
    now = {"t": 2.0}
    monkeypatch.setattr(schedule.time, "perf_counter", lambda: now["t"])
    assert clock.refit(clock.SKIP, t.max_steps, single) is None  # rate measured from here
    now["t"] = 10.0  # 80 steps in 8 s: 10 steps/s, 50 s of the minute left
    assert clock.refit(100, t.max_steps, single) == 100 + int(10 * 50 * clock.SAFETY)
    assert clock.refit(200, t.max_steps, single) is None  # fitted once
    assert not clock.out_of_time(100, single)
    now["t"] = 61.0
    assert clock.out_of_time(100, single) and not clock.out_of_time(101, single)  # log steps only
    assert clock.due(100, 10**6) and not clock.due(101, 10**6) and clock.due(101, 101)


def test_init_partial_grows_a_network_and_refuses_to_shrink_one(tmp_path):
    small = create_model("unet", width=8, depth=3, packing=3, blocks=1)
    path = tmp_path / "small.pt"
    save_checkpoint(make_checkpoint(small, "unet", small.spec["kwargs"], cfa="xtrans", step=5), path)
    grown_model = ["model.width=8", "model.depth=3", "model.packing=3", "model.blocks=[1,2,3]"]
    base = [*tiny(tmp_path, steps=1), *SMALL_DATA, f"trainer.init_from={path}",
            "trainer.optim.lr=1e-12"]
    with pytest.raises(CheckpointError, match="does not fit"):  # strict by default
        run_training(compose_train([*base, *grown_model]))
    run_training(compose_train([*base, *grown_model, "trainer.init_partial=true"]))
    grown = _weights(tmp_path / "ckpt" / "default" / "last.pt")
    assert set(grown) > set(small.state_dict())  # the new blocks are there
    for k, v in small.state_dict().items():  # every old tensor was loaded (lr ~ 0)
        torch.testing.assert_close(grown[k], v, rtol=1e-6, atol=1e-9)
    bigger = tmp_path / "ckpt" / "default" / "last.pt"
    with pytest.raises(CheckpointError, match="tensors the model lacks"):
        run_training(compose_train([*tiny(tmp_path / "s", steps=1), *SMALL_DATA,
                                    f"trainer.init_from={bigger}", "trainer.init_partial=true",
                                    "model.width=8", "model.depth=3", "model.packing=3"]))


def test_a_resumed_time_fitted_run_keeps_its_fitted_schedule(tmp_path, monkeypatch):
    from demosaic.training.schedule import RunClock

    def fake_refit(self, step, max_steps, dist_info):  # as if the rate fitted 6 steps
        if self.fitted or step != 2:
            return None
        self.fitted = True
        return 6

    monkeypatch.setattr(RunClock, "refit", fake_refit)
    args = [*tiny(tmp_path, steps=50), *SMALL_DATA, "trainer.max_minutes=100",
            "trainer.fit_steps_to_time=true", "trainer.save_every=2", "trainer.val_every=3"]
    first = run_training(compose_train(args))
    assert first.step == 6
    assert load_checkpoint(tmp_path / "ckpt" / "default" / "last.pt")["config"]["trainer"]["max_steps"] == 6
    again = run_training(compose_train([*args, "trainer.resume=true"]))
    assert again.step == 6  # not continued towards the configured 50


def test_a_plugin_hook_adds_a_loss_term_without_touching_the_loop(tmp_path, monkeypatch):
    """A new loss term is a hook registered by a module named in trainer.plugins."""
    import sys
    import types

    from demosaic.training import hooks

    plugin = types.ModuleType("demosaic_test_plugin")
    seen = []

    class TVHook(hooks.Hook):
        def loss(self, s, cfa, target, pred, loss, terms):
            tv = (pred[..., 1:, :] - pred[..., :-1, :]).abs().mean()
            seen.append(s.step)
            return loss + 0.01 * tv, {**terms, "tv": tv.detach()}

    def register() -> None:
        hooks.register_hook("tv_test", order=45, plugin="demosaic_test_plugin")(lambda s: TVHook())

    plugin.register = register
    monkeypatch.setitem(sys.modules, "demosaic_test_plugin", plugin)
    monkeypatch.setattr(hooks, "_REGISTRY", dict(hooks._REGISTRY))
    register()
    cfg = compose_train([*tiny(tmp_path, steps=3), *SMALL_DATA, "trainer.run_name=v0.1_tv",
                         "trainer.plugins=[demosaic.research.hooks,demosaic_test_plugin]"])
    result = run_training(cfg)
    assert seen == [0, 1, 2] and result.step == 3
    rows = [json.loads(x) for x in (tmp_path / "logs" / "metrics_v0.1_tv.jsonl").read_text().splitlines()]
    assert any("loss/tv" in r for r in rows)


def test_a_research_option_without_its_plugin_is_a_clear_error(tmp_path):
    cfg = compose_train([*tiny(tmp_path), *SMALL_DATA, "trainer.plugins=[]",
                         "trainer.curriculum.start_fraction=0.5", "trainer.curriculum.ramp_steps=2"])
    with pytest.raises(ConfigError, match="curriculum.*trainer.plugins"):
        run_training(cfg)


def test_an_expanded_model_trains_from_a_plain_checkpoint_and_releases_plain(tmp_path):
    """model.expand=2 through the Hydra schema: a fine-tune of a plain checkpoint
    (trainer.init_partial), whose release checkpoint is the plain network again."""
    from demosaic.models.checkpoint import release_checkpoint
    from demosaic.models.unet import ExpandedConv

    torch.manual_seed(0)
    plain = create_model("unet", width=8, depth=2, packing=3)
    path = tmp_path / "plain.pt"
    save_checkpoint(make_checkpoint(plain, "unet", plain.spec["kwargs"], cfa="xtrans", step=5), path)
    model_args = ["model.width=8", "model.depth=2", "model.packing=3", "model.expand=2"]
    run_training(compose_train([*tiny(tmp_path, steps=2), *SMALL_DATA, *model_args,
                                f"trainer.init_from={path}", "trainer.init_partial=true"]))
    trained = torch.load(tmp_path / "ckpt" / "default" / "last.pt", weights_only=True)
    assert trained["model"]["kwargs"]["expand"] == 2
    assert any(k.endswith("expand_out") for k in trained["state_dict"])
    release = release_checkpoint(trained)
    assert release["model"]["kwargs"]["expand"] == 0
    torch.save(release, tmp_path / "release.pt")
    loaded = load_model(tmp_path / "release.pt")
    assert not any(isinstance(m, ExpandedConv) for m in loaded.modules())
