"""`colorcli train`: train one of the paper's GAN colorizers."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

from colorcli.commands._common import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    fail,
    need_train_extra,
    usage_error,
)
from colorcli.models.registry import ARCHITECTURES, growth
from colorcli.train_config import ConfigError, TrainConfig, recipe_of

ARCH_HELP = "Architecture: " + "; ".join(f"{a.name}: {a.summary}" for a in ARCHITECTURES.values())
_DEFAULTS = TrainConfig()


def _shown(default: object) -> str:
    # escaped: rich would take a bare [default: ...] for markup and print nothing
    return rf" \[default: {default}]"


def _default(name: str) -> str:
    """--help's note of a setting's default: TrainConfig's (a --config recipe, --init or
    --resume may set it otherwise). The options themselves default to None, so that a flag
    left out does not override the recipe."""
    value = getattr(_DEFAULTS, name)
    return _shown({True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value)


def _per_arch(part: str, key: str) -> str:
    """--help's note of a generator or discriminator setting's default, which depends on --arch."""
    values = {
        name: args[key] for name, a in ARCHITECTURES.items() if key in (args := getattr(a, f"{part}_args"))
    }
    if len(set(values.values())) == 1:
        return _shown(next(iter(values.values())))
    return _shown(", ".join(f"{name} {value}" for name, value in values.items()))


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        usage_error(f"--config {path}: {exc}")


def train(
    arch: str | None = typer.Option(None, "--arch", help=ARCH_HELP + _default("arch")),
    data: list[str] | None = typer.Option(
        None,
        "--data",
        help="Training images: a folder (recursive), a .tar/.tar.gz archive (read in place), "
        "a folder inside one (photos.tar.gz/train/cars) or CIFAR-10's cifar-10-batches-py "
        "folder. Repeat to combine. train/ and val/ (or test/) folders set the split, else a "
        "hash of each path does (--val-fraction).",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run folder for checkpoints, metrics and samples."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="A TOML recipe (see training/*.toml); flags given here override it."
    ),
    epochs: int | None = typer.Option(
        None,
        help="Train until this many epochs are done (counting resumed ones)." + _default("epochs"),
    ),
    batch_size: int | None = typer.Option(
        None, help="Images per batch (per process under torchrun)." + _default("batch_size")
    ),
    image_size: int | None = typer.Option(
        None, help="Training crop size in pixels (square)." + _default("image_size")
    ),
    device: str | None = typer.Option(None, help="auto, cpu or cuda." + _default("device")),
    precision: str | None = typer.Option(
        None,
        help="auto (bf16 on CPUs that support it, mixed precision on GPUs), fp32, bf16 or fp16."
        + _default("precision"),
    ),
    seed: int | None = typer.Option(
        None, help="Random seed; with a fixed seed CPU runs repeat exactly." + _default("seed")
    ),
    workers: int | None = typer.Option(
        None, help="DataLoader worker processes decoding images." + _default("workers")
    ),
    lr_g: float | None = typer.Option(None, help="Generator learning rate." + _default("lr_g")),
    lr_d: float | None = typer.Option(None, help="Discriminator learning rate." + _default("lr_d")),
    lr_decay_steps: int | None = typer.Option(
        None,
        help="Learning rates decay by --lr-decay every this many steps (0: constant)."
        + _default("lr_decay_steps"),
    ),
    lr_decay: float | None = typer.Option(
        None, help="Learning-rate decay factor per --lr-decay-steps." + _default("lr_decay")
    ),
    adv_weight: float | None = typer.Option(
        None, help="Weight of the adversarial term (0: L1 only)." + _default("adv_weight")
    ),
    l1_weight: float | None = typer.Option(
        None, help="Weight of the L1 term on a,b." + _default("l1_weight")
    ),
    real_label: float | None = typer.Option(
        None,
        help="Target for real images (< 1: one-sided label smoothing)." + _default("real_label"),
    ),
    disc_pixels: float | None = typer.Option(
        None,
        help="Pixel discriminators: fraction of pixels the loss is estimated on (1: all)."
        + _default("disc_pixels"),
    ),
    disc_context: bool | None = typer.Option(
        None,
        "--disc-context/--no-disc-context",
        help="Colour-class U-Nets: the pixel discriminator also sees the generator's bottleneck "
        "features beside each pixel, so it judges a colour for its scene, not only its lightness."
        + _default("disc_context"),
    ),
    disc_hue: bool | None = typer.Option(
        None,
        "--disc-hue/--no-disc-hue",
        help="Show the discriminator real colours at the generator's own chroma, pixel by pixel, "
        "so it judges hue alone and the adversarial term cannot be met by saturation." + _default("disc_hue"),
    ),
    rebalance: float | None = typer.Option(
        None,
        help="Weight rare colours in the L1 (and cross-entropy) term against desaturated results "
        "(Zhang et al. 2016): 0 off, 0.5 their setting, 1 full inverse frequency." + _default("rebalance"),
    ),
    rebalance_hues: float | None = typer.Option(
        None,
        help="Also weight each clearly coloured pixel by how rare its hue family is (red, orange "
        "and skin, yellow, green, blue, violet), at this strength as --rebalance. On the default "
        "model's photos it moved pixels from orange to yellow and green, not to red (model card)."
        + _default("rebalance_hues"),
    ),
    class_weight: float | None = typer.Option(
        None,
        help="With --colour-bins: also train the generator's bottleneck to name each photo's class "
        "(its folder, or its file name before the first '_'), weighted so against the colour loss "
        "(Iizuka et al. 2016): recognition that colour follows from. 0: off." + _default("class_weight"),
    ),
    colour_bins: int | None = typer.Option(
        None,
        help="U-Net: predict a distribution over this many a,b cells per axis (22: 10 a,b units "
        "each) instead of one a,b value, and colour with its annealed mean (Zhang et al. 2016)."
        + _shown("one a,b value"),
    ),
    ce_weight: float | None = typer.Option(
        None,
        help="With --colour-bins: weight of the cross-entropy term on the colour cells."
        + _default("ce_weight"),
    ),
    width: int | None = typer.Option(
        None,
        help="Generator base width (channels of its first layer)." + _per_arch("generator", "width"),
    ),
    depth: int | None = typer.Option(
        None, help="U-Net: number of downsampling steps." + _per_arch("generator", "depth")
    ),
    blocks: int | None = typer.Option(
        None,
        help="Residual blocks: the ResNet's, or a U-Net's at its bottleneck (more of them than an "
        "--init U-Net has are added, starting as the identity)." + _per_arch("generator", "blocks"),
    ),
    imagenet_encoder: bool | None = typer.Option(
        None,
        "--imagenet-encoder/--no-imagenet-encoder",
        help="U-Net: add a frozen ImageNet-trained encoder (EfficientNet-Lite0, its weights installed "
        "with the train extra) that tells the bottleneck what is in the photo; with --init it starts "
        "at zero weight, so training begins from the checkpoint's colours." + _shown("off"),
    ),
    disc_width: int | None = typer.Option(
        None, help="Discriminator base width." + _per_arch("discriminator", "width")
    ),
    val_fraction: float | None = typer.Option(
        None, help="Validation share when the data has no val/ folder." + _default("val_fraction")
    ),
    limit: int | None = typer.Option(
        None,
        help="Use at most this many training images, spread over the --data sources (0: all)."
        + _default("limit"),
    ),
    val_limit: int | None = typer.Option(
        None,
        help="Validate on at most this many images, spread over the split (0: all)." + _default("val_limit"),
    ),
    epoch_size: int | None = typer.Option(
        None,
        help="Images per epoch, drawn afresh each epoch, for frequent checkpoints (0: full pass)."
        + _default("epoch_size"),
    ),
    keep_epochs: int | None = typer.Option(
        None,
        help="Also keep the last N epochs' checkpoints as checkpoints/epoch-NNN.pt, to average them "
        "at release (0: only last.pt and best.pt)." + _default("keep_epochs"),
    ),
    init: Path | None = typer.Option(
        None,
        "--init",
        help="Start from this checkpoint's weights. Architecture and widths come from it, and so do "
        "the crop size, batch, losses, learning rates and discriminator settings that --config and "
        "flags leave unset. A regression checkpoint can start a --colour-bins model, whose new head "
        "begins at its colours.",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --out where it stopped (one stopped in its first epoch starts again).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace the run in --out: it is deleted once the new run is ready to start "
        "(only a colorcli run folder, never one holding the data or the working folder).",
    ),
) -> None:
    """Train a colorizer (resnet-sn, unet-sn, unet-bn or unet-patch) on your photos.

    Example: colorcli train --arch unet-sn --data photos/ --image-size 128 --out runs/mine --epochs 20
    """
    given = {k: v for k, v in locals().items() if v is not None and k not in ("config", "resume", "force")}
    need_train_extra("training", ("torch",))
    flags = dict(given)  # _settings takes the generator's widths out of given
    settings, resume = _settings(given, config, resume, force)
    _run(settings, flags, resume, force)


def _settings(
    given: dict[str, Any], config: Path | None, resume: bool, force: bool
) -> tuple[dict[str, Any], bool]:
    """Defaults < run folder's config.json (on --resume) < --config recipe < flags given, and
    whether there is a checkpoint to resume (a run stopped in its first epoch starts again).

    A fresh run with --init also takes what is still unset from the checkpoint's recipe (``_run``).
    """
    if resume and force:
        usage_error("--resume and --force contradict each other; pick one")
    if (arch := given.get("arch")) and arch not in ARCHITECTURES:
        usage_error(f"unknown --arch {arch!r}; choose one of: {', '.join(ARCHITECTURES)}")
    settings: dict[str, Any] = {}
    out = given.get("out")
    restart = False  # --resume of a run that never finished an epoch
    if resume:
        if out is None:
            usage_error("--resume needs --out RUN_DIR")
        saved = Path(out) / "config.json"
        if not saved.is_file():
            usage_error(f"--resume: {out} holds no run to resume (no config.json)")
        try:
            recorded = json.loads(saved.read_text())
            if not isinstance(recorded, dict):
                raise ValueError("not a JSON object")
        except (ValueError, OSError) as exc:
            fail(f"--resume: {saved} cannot be read ({exc}); start the run again with --force")
        settings.update(recorded)
        for flag in ("arch", "init"):
            if given.get(flag) and given[flag] != settings.get(flag):
                usage_error(
                    f"--resume continues {out} as it was started (--{flag} {settings.get(flag) or 'none'}); "
                    f"drop --{flag}, or start a new run with another --out"
                )
        checkpoints = Path(out) / "checkpoints"
        if (checkpoints / "last.pt").is_file():
            settings["init"] = ""  # the run's own checkpoint has the weights
        elif any(checkpoints.glob("*.pt")) or _recorded_epochs(Path(out)):  # and last.pt has gone
            fail(
                f"--resume: {checkpoints / 'last.pt'} is missing, though the run saved epochs; put it "
                "back, or start a new --out (from another of its checkpoints with --init, if any)"
            )
        else:
            resume, restart = False, True
            typer.echo(f"--resume: no epoch of {out} finished; starting it again", err=True)
    if config is not None:
        recipe = _load_toml(config)
        settings.update({k.replace("-", "_"): v for k, v in recipe.items()})
        _check_shapes(config, settings)
    gen_keys = ("width", "depth", "blocks", "colour_bins", "imagenet_encoder")
    gen_args = {k: given.pop(k) for k in gen_keys if k in given}
    if "disc_width" in given:
        settings.setdefault("discriminator_args", {})["width"] = given.pop("disc_width")
    if gen_args:
        settings["generator_args"] = {**settings.get("generator_args", {}), **gen_args}
    settings.update({k: (str(v) if isinstance(v, Path) else v) for k, v in given.items()})
    if isinstance(settings.get("data"), str):  # a recipe's data = "photos/": one path, not its letters
        settings["data"] = [settings["data"]]
    if "data" in settings:
        # absolute, so that --resume works from any folder (a job's working folder is not the shell's)
        settings["data"] = [os.path.abspath(p) for p in map(str, settings["data"])]
    if not settings.get("data"):
        usage_error("no training data; pass --data PATH (a folder, a .tar/.tar.gz or a CIFAR batches folder)")
    if not settings.get("out"):
        usage_error("no run folder; pass --out RUN_DIR")
    run_dir = Path(settings["out"])
    if not resume and not restart and _names(run_dir):
        if not force:
            usage_error(f"{run_dir} already exists; use --resume to continue it or --force to start afresh")
        _check_replaceable(run_dir, settings["data"])
    _check_writable(run_dir)
    return settings, resume


def _check_shapes(config: Path, settings: dict[str, Any]) -> None:
    """The recipe values used before TrainConfig checks the rest: paths are text, the networks'
    arguments tables."""
    for key in ("out", "init"):
        if key in settings and not isinstance(settings[key], str):
            usage_error(f"{config}: {key} must be a path in quotes, not {settings[key]!r}")
    for key in ("generator_args", "discriminator_args"):
        if key in settings and not isinstance(settings[key], dict):
            usage_error(f"{config}: {key} must be a table ([{key}] with width = ... below it)")
    data = settings.get("data")
    if data is not None and not (
        isinstance(data, str) or (isinstance(data, list) and all(isinstance(p, str) for p in data))
    ):
        usage_error(f"{config}: data must be a path or a list of paths in quotes")


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def _check_replaceable(run_dir: Path, data: list[str]) -> None:
    """--force deletes the whole folder: refuse anything that is not plainly a run of ours."""
    where = run_dir.resolve()
    if where == Path.cwd().resolve() or where in Path.cwd().resolve().parents:
        usage_error(f"--force would delete {run_dir}, which holds the working folder; give another --out")
    if any(Path(d).resolve().is_relative_to(where) for d in data):
        usage_error(f"--force would delete {run_dir}, which holds the training data; give another --out")
    if not {"config.json", "checkpoints"} & _names(run_dir):
        usage_error(f"{run_dir} is not a colorcli run folder; --force replaces only runs")


def _check_writable(run_dir: Path) -> None:
    """Before the data is scanned: the nearest existing folder on the way to --out is writable."""
    existing = next(p for p in (run_dir, *run_dir.absolute().parents) if p.exists())
    if not existing.is_dir():
        usage_error(f"--out {run_dir}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        fail(f"--out {run_dir}: {existing} is not writable; choose another --out")


def _word(value: Any) -> Any:
    return ("on" if value else "off") if isinstance(value, bool) else value


def _check_init_fits(init: str, flags: dict[str, Any], state: dict[str, Any]) -> None:
    """--init keeps the checkpoint's architecture and widths (a U-Net may gain bottleneck
    blocks and the ImageNet encoder): other ones asked for by flag are an error, not something
    to drop without a word. A recipe's are not: a recipe written for one architecture also
    continues a generator filed under another (training/README.md)."""
    # checkpoints from before the encoder, and ResNets, have none
    own = {"arch": state["arch"], "imagenet_encoder": False, **state["generator_args"]}
    grown = growth(state["arch"], state["generator_args"], flags)
    asked = [k for k in ("arch", "width", "depth", "blocks", "imagenet_encoder") if k not in grown]
    clash = [k for k in asked if flags.get(k) not in (None, own.get(k))]
    if clash:
        kept = ", ".join(f"{k.replace('_', '-')} {_word(own.get(k))}" for k in clash)
        named = ", ".join(f"--{'no-' if flags[k] is False else ''}{k.replace('_', '-')}" for k in clash)
        usage_error(f"--init {init} keeps its own {kept}; drop {named} or start without --init")


def _inherit_recipe(settings: dict[str, Any], recipe: dict[str, Any], defaults: TrainConfig) -> None:
    """Fill the settings the user left unset from the --init checkpoint's recipe, and name
    those that differ from the ``defaults``."""
    inherited = {k: v for k, v in recipe.items() if k not in settings}
    settings.update(inherited)
    changed = {k: v for k, v in inherited.items() if getattr(defaults, k) != v}
    if changed and int(os.environ.get("RANK", "0")) == 0:
        listed = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in changed.items())
        typer.echo(f"--init: trained as the checkpoint was: {listed}", err=True)


def _recorded_epochs(run_dir: Path) -> bool:
    try:
        return bool((run_dir / "metrics.jsonl").read_text().strip())
    except OSError:
        return False


def _run(settings: dict[str, Any], flags: dict[str, Any], resume: bool, force: bool) -> None:
    # torch is imported here, not at module level: the base install has no torch
    try:
        from colorcli import checkpoint, data, trainer
        from colorcli.commands.train_display import TrainDisplay
        from colorcli.models.registry import UnknownArchitecture
    except ImportError as exc:
        fail(f"training needs PyTorch ({exc}); install it with: pip install 'colorcli[train]'")

    try:
        if settings.get("init"):
            state = checkpoint.load(settings["init"])
            _check_init_fits(settings["init"], flags, state)
            _inherit_recipe(settings, recipe_of(state), _DEFAULTS)
        cfg = TrainConfig.from_dict(settings)
        run = trainer.Trainer(cfg, resume=resume)
    except checkpoint.CheckpointError as exc:  # a ValueError too: a bad file, not a bad flag
        fail(str(exc))
    except (ConfigError, data.DataError, UnknownArchitecture, ValueError) as exc:
        usage_error(str(exc))
    if force and run.dist.main and Path(cfg.out).exists():
        shutil.rmtree(cfg.out)  # only now that the run is known to start (see _check_replaceable)
    display = TrainDisplay(enabled=run.dist.main)
    started_at = run.epoch
    try:
        with display:
            run.fit(display)
    except OSError as exc:
        fail(f"cannot write the run folder {cfg.out}: {exc.strerror or exc}")
    except trainer.Diverged as exc:
        fail(str(exc))
    except (KeyboardInterrupt, Terminated) as exc:
        # a stop that came while the last epoch's files were written waited for them: done
        if not run.finished:
            _stopped(exc, Path(cfg.out), run.saved_epoch)
    finally:
        run.close()
    if run.dist.main:
        typer.echo(f"done: {run.epoch} epochs; checkpoints in {Path(cfg.out) / 'checkpoints'}", err=True)
        if resume and run.epoch == started_at:
            typer.echo(f"(it had already trained {run.epoch} epochs: raise --epochs to train more)", err=True)


def _stopped(stop: BaseException, out: Path, saved_epoch: int) -> NoReturn:
    last = out / "checkpoints" / "last.pt"
    where = f"the last checkpoint ({last}, epoch {saved_epoch}) is intact" if last.exists() else None
    how, code = ("interrupted", EXIT_INTERRUPTED)
    if isinstance(stop, Terminated):
        how, code = ("terminated", EXIT_TERMINATED)
    fail(f"{how}; {where or 'no epoch finished'}. Continue with: colorcli train --resume --out {out}", code)
