"""The GAN training loop: set-up, batches, epochs, checkpoints, resume, DDP.

Launched by ``colorcli train`` (one process) or ``torchrun -m colorcli train`` (DDP: gloo on
CPU, nccl on CUDA; only rank 0 writes files). Ranks, devices and stops: :mod:`colorcli.processes`;
the losses and the paper's figures: :mod:`colorcli.losses`; the run folder's files:
:mod:`colorcli.run_files`.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from colorcli import __version__, checkpoint, color, data, losses, processes, rebalance, run_files
from colorcli.atomic import write_atomic
from colorcli.models import colour_classes, registry
from colorcli.train_config import ConfigError, TrainConfig

# a run whose losses are NaN or infinite for this many steps in a row has diverged for good
DIVERGED_STEPS = 20


class Diverged(RuntimeError):
    """The losses stopped being numbers: the weights have gone to NaN or infinity."""


def _numbers(values: dict[str, float]) -> bool:
    return math.isfinite(values["gen_l1"]) and math.isfinite(values["disc_loss"])


def _spread(items: Any, n: int) -> list[Any]:
    """``n`` items evenly spaced through ``items``: every source of a mixed data set is represented."""
    return [items[i * len(items) // n] for i in range(n)]


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _to_nowhere(message: str) -> None:
    pass


class _Silent:
    def start(self, description: str, total: int) -> None:
        return None

    def advance(self, task: Any, n: int, running: dict[str, float]) -> None:
        pass

    def finish(self, task: Any) -> None:
        pass

    def epoch_table(self, record: dict[str, Any]) -> None:
        pass


class Trainer:
    def __init__(
        self, cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] | None = None
    ) -> None:
        cfg.check()
        self.cfg = cfg
        self.run_dir = Path(cfg.out)
        self.device = processes.pick_device(cfg.device)
        self.dist = processes.Distributed(self.device)
        self.amp = processes.pick_precision(cfg.precision, self.device)
        # under torchrun every rank would otherwise repeat each message (skipped images, data)
        self.log = log if log is not None else (_to_stderr if self.dist.main else _to_nowhere)
        torch.manual_seed(cfg.seed + self.dist.rank)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        init_state = checkpoint.load(cfg.init) if cfg.init else None
        if init_state is not None:
            # the checkpoint fixes the architecture and widths; only a new colour-class head or
            # added bottleneck blocks given beside it still apply. Discriminator settings given
            # apply (one that then does not fit the checkpoint's starts afresh, _warm_start).
            cfg.arch = init_state["arch"]
            own = init_state["generator_args"]
            head = {k: v for k, v in cfg.generator_args.items() if k in colour_classes.HEAD_ARGS}
            grown = registry.growth(cfg.arch, own, cfg.generator_args)
            cfg.generator_args = {**own, **head, **grown}
            init_disc = init_state.get("discriminator_args") or {}
            cfg.discriminator_args = {**init_disc, **cfg.discriminator_args}
        cfg.generator_args = registry.generator_args(cfg.arch, **cfg.generator_args)
        self.gen = registry.build_generator(cfg.arch, cfg.generator_args)
        multiple = getattr(self.gen, "multiple", 1)
        if multiple > cfg.image_size:  # each crop would be padded up to it: memory for nothing
            raise ConfigError(
                f"this {cfg.arch} generator pads every {cfg.image_size} px crop to {multiple} px "
                f"(the size its levels halve to); lower --depth, or raise --image-size to {multiple}"
            )
        self.gen = self.gen.to(self.device)
        self.classes = getattr(self.gen, "classes", None)  # a colour-class head (--colour-bins)
        # context follows this run's --disc-context, not the --init checkpoint's discriminator
        cfg.discriminator_args.pop("context", None)
        for flag, given in (("--disc-context", cfg.disc_context), ("--class-weight", cfg.class_weight)):
            if given and self.classes is None:
                raise ConfigError(f"{flag} needs a U-Net with --colour-bins")
        if cfg.adv_weight == cfg.l1_weight == 0 and (cfg.ce_weight == 0 or self.classes is None):
            raise ConfigError("--adv-weight and --l1-weight are both 0: the generator would learn nothing")
        if cfg.disc_context:
            cfg.discriminator_args["context"] = self.gen.context_channels
        cfg.discriminator_args = registry.discriminator_args(cfg.arch, **cfg.discriminator_args)
        self.disc = registry.build_discriminator(cfg.arch, cfg.discriminator_args).to(self.device)
        if init_state is not None:
            self._warm_start(init_state)
        elif getattr(self.gen, "encoder", None) is not None and not resume:
            self.gen.encoder.load_imagenet()
        # before the data is scanned (minutes on a large set), so that a misfit fails at once
        resumed = None
        if resume:
            resumed = checkpoint.load(self.run_dir / "checkpoints" / "last.pt", map_location="cpu")
            self._restore_networks(resumed)
        self.pixelwise = bool(getattr(self.disc, "pixelwise", False))

        # fused Adam: one kernel per step instead of a handful per parameter tensor
        adam = {"betas": (cfg.beta1, cfg.beta2), "fused": True}
        # the ImageNet encoder is frozen: nothing of it to optimise
        trained = [p for p in self.gen.parameters() if p.requires_grad]
        self.opt_g = torch.optim.Adam(trained, lr=cfg.lr_g, **adam)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr_d, **adam)
        decay = (
            (lambda step: max(cfg.lr_decay ** (step / cfg.lr_decay_steps), 1e-3))
            if cfg.lr_decay_steps
            else (lambda step: 1.0)
        )
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, decay)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, decay)
        # fp16 gradients underflow without loss scaling; under bf16 and fp32 the scaler does nothing
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp is torch.float16)
        self.epoch, self.step = 0, 0
        self.saved_epoch = 0  # the epoch checkpoints/last.pt holds
        self.best_val_l1 = math.inf
        self.classifier: nn.Module | None = None  # --class-weight's, made with the data's classes
        self.opt_c: torch.optim.Optimizer | None = None

        train, val = self._photos()
        labels = self._photo_classes(train, val, adam) if cfg.class_weight else (None, None)
        self.train_set = data.ColourDataset(train, cfg.image_size, True, cfg.seed, cfg.crop_scale, labels[0])
        self.val_set = data.ColourDataset(val, cfg.image_size, False, cfg.seed, labels=labels[1])
        self.rarity = self._colour_prior(train) if cfg.rebalance or cfg.rebalance_hues else None
        # after every network exists (the classifier is drawn from the global RNG, which this restores)
        if resumed is not None:
            self._restore(resumed)

        self.gen_ddp, self.disc_ddp, self.classifier_ddp = self.gen, self.disc, self.classifier
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.gen_ddp = nn.parallel.DistributedDataParallel(self.gen, device_ids=ids)
            self.disc_ddp = nn.parallel.DistributedDataParallel(self.disc, device_ids=ids)
            if self.classifier is not None:
                self.classifier_ddp = nn.parallel.DistributedDataParallel(self.classifier, device_ids=ids)

    def _photos(self) -> tuple[list[data.Record], list[data.Record]]:
        """The training and validation photos of ``--data`` (near-grey and unreadable ones
        skipped, counted in ``self.summary``), or the error that says why there are too few."""
        cfg = self.cfg
        records = data.find_records(cfg.data, cfg.val_fraction, skip=Path(cfg.out))
        train, val, self.summary = data.select(records, threads=max(cfg.workers, 1), warn=self.log)
        self.summary.sources = [Path(p).name for p in cfg.data]
        if cfg.limit and len(train) > cfg.limit:
            train = _spread(train, cfg.limit)  # from every --data source, as validation is
        if cfg.val_limit and len(val) > cfg.val_limit:
            val = _spread(val, cfg.val_limit)
        if not train or not val:
            # data.select lends validation an image whenever there are two, so either too few
            # images are left or every one is a validation image
            skipped = self.summary.grey + self.summary.corrupt
            if len(train) + len(val) >= 2:
                hint = "all are in val/ or test/ folders, or hashed there by --val-fraction; add others"
            elif skipped:
                hint = (
                    f"{skipped} of {len(records)} images were skipped ({self.summary.grey} near-grey, "
                    f"{self.summary.corrupt} unreadable): give colour photos"
                )
            else:
                hint = "give at least two colour photos: one is kept to validate on"
            raise data.DataError(
                f"need both training and validation images; found {len(train)} train and {len(val)} "
                f"validation ({hint})"
            )
        stride = getattr(self.gen, "context_stride", 0)  # U-Nets: 2 ** depth
        if min(cfg.batch_size, cfg.epoch_size or len(train), len(train)) == 1 and cfg.image_size <= stride:
            # batch norm in training needs two values per channel (else a traceback deep in torch)
            raise ConfigError(
                f"a batch of one {cfg.image_size} px image leaves the U-Net's deepest level one pixel, "
                f"too little for batch norm; use --batch-size 2 (and two training images) or more, "
                f"or --image-size {2 * stride}"
            )
        self.summary.train, self.summary.val = len(train), len(val)
        self.log(
            f"data: {len(train)} training and {len(val)} validation images; skipped "
            f"{self.summary.grey} near-grey and {self.summary.corrupt} unreadable"
        )
        return train, val

    def _photo_classes(
        self, train: list[data.Record], val: list[data.Record], adam: dict[str, Any]
    ) -> tuple[list[int], list[int]]:
        """``--class-weight``: each photo's class index (:func:`data.class_of`; -1 for a validation
        photo of a class training never shows, which the class loss leaves out), and the linear
        classifier that names it from the generator's pooled bottleneck, with its optimiser.

        Colour follows from what a thing is; a loss that asks the bottleneck to say what the
        photo shows teaches recognition beside the colour loss (Iizuka et al. 2016, on Places).
        """
        names = sorted({data.class_of(r.key) for r in train})
        if len(names) < 2:
            raise ConfigError(
                f"--class-weight needs photos of at least two classes (folders, or file names "
                f"before their first '_'); all training photos are {names[0]!r}"
            )
        index = {name: i for i, name in enumerate(names)}
        self.classifier = nn.Linear(self.gen.context_channels, len(names)).to(self.device)
        # a fresh head at Adam's usual rate, whatever the (often low, warm-started) generator's
        self.opt_c = torch.optim.Adam(self.classifier.parameters(), lr=1e-3, **adam)
        self.log(f"--class-weight: {len(names)} classes, e.g. {', '.join(names[:3])}")
        val_labels = [index.get(data.class_of(r.key), -1) for r in val]
        return [index[data.class_of(r.key)] for r in train], val_labels

    def _warm_start(self, state: dict[str, Any]) -> None:
        """Loads ``--init`` weights. Only the generator's output head may differ: a colour-class
        head warm-started from a regression checkpoint starts around its colours, any other
        new head afresh. Added bottleneck blocks start as the identity. A discriminator that
        does not fit (one given context) starts afresh."""
        own = self.gen.state_dict()
        fits = {k: v for k, v in state["generator"].items() if k in own and own[k].shape == v.shape}
        grown = ("blocks.", "encoder.", "fuse.")
        added = {k for k in own if k.startswith(grown) and k not in state["generator"]}
        misfits = sorted((set(own) | set(state["generator"])) - set(fits) - added)
        if any(k.startswith("blocks.") for k in added):
            more = len(self.gen.blocks) - state["generator_args"].get("blocks", 0)
            self.log(f"--init: {more} residual blocks added at the bottleneck start as the identity")
        if any(k.startswith(checkpoint.FROZEN) for k in added):  # new, or left out (checkpoint.py)
            self.gen.encoder.load_imagenet()
        if any(k.startswith("fuse.") for k in added):
            self.log("--init: the ImageNet encoder is added, its features at zero weight to start")
        if any(not k.startswith("head.") for k in misfits):
            raise ConfigError(
                f"--init {self.cfg.init}: its generator does not fit {self.cfg.arch} with "
                f"{self.cfg.generator_args} (e.g. {misfits[0]}); drop the conflicting settings"
            )
        self.gen.load_state_dict(fits, strict=False)
        regression = "head.0.weight" in state["generator"] and "head.0.weight" not in own
        if regression and self.classes is not None:
            self.classes.start_from_regression(
                state["generator"]["head.0.weight"], state["generator"]["head.0.bias"]
            )
            self.log("--init: the colour-class head starts as a distribution around the checkpoint's colours")
        elif misfits:
            self.log(f"--init: the generator's output head starts afresh ({', '.join(misfits)})")
        disc, own_disc = state.get("discriminator") or {}, self.disc.state_dict()
        if disc and set(disc) == set(own_disc) and all(own_disc[k].shape == v.shape for k, v in disc.items()):
            self.disc.load_state_dict(disc)
        elif disc:
            self.log("--init: the discriminator differs from the checkpoint's and starts afresh")

    def _colour_prior(self, train: list[data.Record]) -> rebalance.ColourRarity:
        """The a,b histogram of up to 512 training images (centre crops), spread over the set;
        recomputed identically on resume, so it needs no place in the checkpoint."""
        sample = _spread(train, min(512, len(train)))
        images = data.ColourDataset(sample, self.cfg.image_size, False, self.cfg.seed)
        # its own generator: the global RNG, restored on resume, must not move
        loader = torch.utils.data.DataLoader(
            images,
            batch_size=self.cfg.batch_size,
            num_workers=self.cfg.workers,
            generator=torch.Generator(),
            worker_init_fn=processes.init_worker,
        )
        with processes.stops_held():
            batches = iter(loader)
        with torch.no_grad():
            return rebalance.ColourRarity.from_batches(
                (self._lab(batch)[2] for batch in batches), self.cfg.rebalance, self.cfg.rebalance_hues
            )

    # ---- checkpoints -------------------------------------------------------------------------

    def _rng(self) -> dict[str, torch.Tensor]:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _state(self, metrics: dict[str, Any], rngs: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
        """The checkpoint; ``rngs``: every rank's random state, so each resumes its own stream."""
        return {
            "format": checkpoint.CHECKPOINT_FORMAT,
            "arch": self.cfg.arch,
            "generator_args": self.cfg.generator_args,
            "discriminator_args": self.cfg.discriminator_args,
            "generator": checkpoint.generator_weights(self.gen),
            "discriminator": self.disc.state_dict(),
            "classifier": None
            if self.classifier is None
            else {"weights": self.classifier.state_dict(), "optimizer": self.opt_c.state_dict()},
            "optimizers": {"generator": self.opt_g.state_dict(), "discriminator": self.opt_d.state_dict()},
            "schedulers": {
                "generator": self.sched_g.state_dict(),
                "discriminator": self.sched_d.state_dict(),
            },
            "epoch": self.epoch,
            "step": self.step,
            "best_val_l1": self.best_val_l1,
            "rng": {"ranks": rngs},
            "scaler": self.scaler.state_dict(),
            "colorcli_version": __version__,
            "data": self.summary.as_dict(),
            "config": dataclasses.asdict(self.cfg),
            "image_size": self.cfg.image_size,
            "metrics": metrics,
        }

    def _restore_networks(self, state: dict[str, Any]) -> None:
        try:
            checkpoint.load_generator_weights(self.gen, state["generator"])
            self.disc.load_state_dict(state["discriminator"])
        except RuntimeError:  # settings given beside --resume that change the networks
            raise ConfigError(
                f"--resume: the run's networks ({state['arch']}, {state['generator_args']}, discriminator "
                f"{state['discriminator_args']}) do not fit the settings given; resume without the flags "
                "that change them (--arch, --width, --depth, --blocks, --colour-bins, --disc-width, "
                "--disc-context)"
            ) from None

    def _restore(self, state: dict[str, Any]) -> None:
        """Everything but the networks (:meth:`_restore_networks`): optimizers, counters, RNG."""
        if self.classifier is not None:
            saved = state.get("classifier")
            if saved is None or saved["weights"]["weight"].shape != self.classifier.weight.shape:
                raise ConfigError(
                    "--resume: the run was not trained with --class-weight on these classes; "
                    "resume with the run's own data and settings"
                )
            self.classifier.load_state_dict(saved["weights"])
            self.opt_c.load_state_dict(saved["optimizer"])
        self.opt_g.load_state_dict(state["optimizers"]["generator"])
        self.opt_d.load_state_dict(state["optimizers"]["discriminator"])
        self.sched_g.load_state_dict(state["schedulers"]["generator"])
        self.sched_d.load_state_dict(state["schedulers"]["discriminator"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.saved_epoch = self.epoch
        self.best_val_l1 = state.get("best_val_l1", math.inf)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        ranks = state["rng"].get("ranks", [state["rng"]])  # older checkpoints: one process's state
        mine = ranks[self.dist.rank] if self.dist.rank < len(ranks) else None
        if mine is None:  # resumed on more processes than saved: a stream of its own
            torch.manual_seed(self.cfg.seed + self.dist.rank + self.step)
        else:
            torch.set_rng_state(mine["torch"])
            if "cuda" in mine and self.device.type == "cuda":
                torch.cuda.set_rng_state(mine["cuda"], self.device)

    # ---- one batch ---------------------------------------------------------------------------

    def _autocast(self) -> Any:
        if self.amp is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp)

    def _lab(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rgb = batch.to(self.device, non_blocking=True).float().div_(255.0)
        lab = color.rgb_to_lab_nchw(rgb)
        # channels_last activations from the input on are what oneDNN and cuDNN run fastest; the
        # parameters stay contiguous, because fused Adam on CPU copies channels_last ones on every
        # step (21 against 7 ms for the U-Net's 13 M deepest weights)
        l_norm = color.normalise_l(lab[:, :1]).contiguous(memory_format=torch.channels_last)
        ab = color.normalise_ab(lab[:, 1:]).contiguous(memory_format=torch.channels_last)
        return rgb, l_norm, ab

    def _pixels(self, context: torch.Tensor | None, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The same random subset of pixels from each image, as (N, C, K, 1) maps, each with
        the ``context`` features of the low-resolution cell it lies in appended.

        A 1×1 discriminator sees every pixel alone, so its loss is a mean over pixels and a
        random subset estimates it without bias at a fraction of the cost.
        """
        n, _, h, w = images[0].shape
        if not self.pixelwise or self.cfg.disc_pixels >= 1:
            if context is None:
                return images
            # nearest upsampling, then a crop: the generator pads its input to whole cells
            context = context.repeat_interleave(self.gen.context_stride, 2)
            context = context.repeat_interleave(self.gen.context_stride, 3)[..., :h, :w]
            return tuple(torch.cat([x, context.to(x.dtype)], 1) for x in images)
        k = max(1, int(h * w * self.cfg.disc_pixels))
        idx = torch.randint(0, h * w, (n, 1, k), device=images[0].device)
        picked = [x.flatten(2).gather(2, idx.expand(n, x.shape[1], k)) for x in images]
        if context is not None:
            stride, cols = self.gen.context_stride, context.shape[-1]
            cell = (idx // w // stride) * cols + idx % w // stride
            features = context.flatten(2).gather(2, cell.expand(n, context.shape[1], k))
            picked = [torch.cat([x, features.to(x.dtype)], 1) for x in picked]
        return tuple(x.unsqueeze(-1).contiguous(memory_format=torch.channels_last) for x in picked)

    def _batch(
        self, batch: torch.Tensor, train: bool, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        cfg = self.cfg
        rgb, l_norm, ab = self._lab(batch)
        with torch.set_grad_enabled(train), self._autocast():
            if self.classes:
                fake, logits, context = self.gen_ddp(l_norm, logits=True)
            else:
                fake, logits, context = self.gen_ddp(l_norm), None, None
        named = self._name_classes(context, labels, train) if labels is not None else {}
        # the context is evidence about the scene, not something to improve for the discriminator
        context = context.detach() if self.cfg.disc_context else None
        shown = losses.at_chroma_of(ab, fake.detach()) if cfg.disc_hue else ab
        real_in, fake_in = self._pixels(
            context, torch.cat([l_norm, shown], 1), torch.cat([l_norm, fake.detach()], 1)
        )

        # discriminator: real and fake in separate passes, so a batch-norm discriminator
        # never mixes their statistics (the reference code does the same)
        with torch.set_grad_enabled(train), self._autocast():
            d_real = self.disc_ddp(real_in)
        loss_real = losses.bce(d_real, cfg.real_label)
        if train:
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(0.5 * loss_real).backward()
        with torch.set_grad_enabled(train), self._autocast():
            d_fake = self.disc_ddp(fake_in)
        loss_fake = losses.bce(d_fake, 0.0)
        if train:
            self.scaler.scale(0.5 * loss_fake).backward()
            self.scaler.step(self.opt_d)

        # generator: the discriminator's weights are frozen for this pass, and its unwrapped
        # module is used so DDP does not wait for gradients it will never get
        self.disc.requires_grad_(False)
        with torch.set_grad_enabled(train), self._autocast():
            (g_in,) = self._pixels(context, torch.cat([l_norm, fake], 1))
            d_gen = self.disc(g_in)
        self.disc.requires_grad_(True)
        adv = losses.bce(d_gen, 1.0)
        error = (fake.float() - ab).abs()
        l1 = error.mean()
        if train:
            # the reported L1 stays plain, so runs with and without rebalancing compare
            weights = self.rarity.weights(ab) if self.rarity is not None else None
            fit = cfg.l1_weight * (error if weights is None else error * weights).mean()
            if logits is not None:
                ce = self.classes.cross_entropy(logits, ab)
                fit = fit + cfg.ce_weight * (ce if weights is None else ce * weights).mean()
            if named:
                fit = fit + cfg.class_weight * named["loss"]
                self.opt_c.zero_grad(set_to_none=True)
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler.scale(cfg.adv_weight * adv + fit).backward()
            self.scaler.step(self.opt_g)
            if named:
                self.scaler.step(self.opt_c)
            self.scaler.update()
            self.sched_g.step()
            self.sched_d.step()
            self.step += 1

        with torch.no_grad():
            lab_fake = torch.cat(
                [color.denormalise_l(l_norm), color.denormalise_ab(fake.detach().float())], 1
            )
            quality = losses.psnr(color.lab_to_rgb_nchw(lab_fake), rgb).mean()
            acc = 0.5 * (losses.decisions(d_real).float().mean() + (~losses.decisions(d_fake)).float().mean())
        return {
            "gen_adv": adv.item(),
            "gen_l1": l1.item(),
            "disc_loss": 0.5 * (loss_real.item() + loss_fake.item()),
            "disc_acc": acc.item(),
            "psnr": quality.item(),
            **({"class_loss": named["loss"].item(), "class_acc": named["accuracy"]} if named else {}),
        }

    def _name_classes(self, scene: torch.Tensor, labels: torch.Tensor, train: bool) -> dict[str, Any]:
        """The class loss on the generator's (not detached) bottleneck, averaged over the photos
        whose class is known, and the share of those named right."""
        labels = labels.to(self.device)
        with torch.set_grad_enabled(train), self._autocast():
            scores = self.classifier_ddp(scene.mean((2, 3))).float()
        known = (labels >= 0).sum().clamp(min=1)
        loss = F.cross_entropy(scores, labels, ignore_index=-1, reduction="sum") / known
        right = ((scores.argmax(1) == labels) & (labels >= 0)).sum() / known
        return {"loss": loss, "accuracy": right.item()}

    # ---- epochs ------------------------------------------------------------------------------

    def _loader(self, dataset: data.ColourDataset, train: bool) -> Any:
        gen = torch.Generator().manual_seed(self.cfg.seed * 100_003 + self.epoch)
        sampler: Any = None
        if train and self.cfg.epoch_size:
            # short epochs for big data sets: checkpoints, samples and metrics come more often
            n = min(self.cfg.epoch_size, len(dataset))
            sampler = torch.utils.data.RandomSampler(dataset, num_samples=n, generator=gen)
            if self.dist.world > 1:
                # every rank draws the same images (``gen`` depends on seed and epoch alone) and
                # takes its equal share, as DistributedSampler(drop_last=True) shares a full pass
                world = self.dist.world
                sampler = list(sampler)[self.dist.rank : n - n % world : world]
        elif self.dist.world > 1:
            sampler = torch.utils.data.distributed.DistributedSampler(
                dataset, shuffle=train, seed=self.cfg.seed, drop_last=train
            )
            sampler.set_epoch(self.epoch)
        # an epoch smaller than a batch (a few photos, a short --epoch-size) is one short batch
        # rather than none, which trained nothing and reported zeros
        images = len(sampler) if sampler is not None else len(dataset)
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=self.cfg.batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            generator=gen,
            num_workers=self.cfg.workers,
            worker_init_fn=processes.init_worker,
            pin_memory=self.device.type == "cuda",
            drop_last=train and images >= self.cfg.batch_size,
            persistent_workers=False,
            prefetch_factor=4 if self.cfg.workers else None,
        )

    def _run_epoch(self, train: bool, progress: Any) -> dict[str, float]:
        dataset = self.train_set if train else self.val_set
        dataset.set_epoch(self.epoch)
        self.gen.train(train)
        self.disc.train(train)
        metrics = losses.Metrics(classes=dataset.labels is not None)
        loader = self._loader(dataset, train)
        task = progress.start(
            f"epoch {self.epoch + 1}/{self.cfg.epochs} {'train' if train else 'val'}", len(loader)
        )
        with processes.stops_held():
            batches = iter(loader)
        not_numbers = 0  # steps in a row: fp16 overflows now and then, a diverged run every time
        for batch in batches:
            images, labels = batch if dataset.labels is not None else (batch, None)
            values = self._batch(images, train, labels)
            not_numbers = 0 if self._all_numbers(values) else not_numbers + 1
            if not_numbers == DIVERGED_STEPS:
                raise self._diverged(f"for {not_numbers} steps in a row")
            metrics.add(images.shape[0], **values)
            progress.advance(task, images.shape[0], metrics.running())
        progress.finish(task)
        return metrics.result(self.dist, self.device)

    def fit(self, progress: Any = None) -> dict[str, Any]:
        """Train until ``cfg.epochs``; returns the last epoch's metrics.

        ``progress`` receives start/advance/finish/epoch_table calls (see commands/train.py).
        """
        cfg = self.cfg
        progress = progress or _Silent()
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            settings = (json.dumps(dataclasses.asdict(cfg), indent=2) + "\n").encode()
            write_atomic(self.run_dir / "config.json", lambda fh: fh.write(settings))
            run_files.trim_metrics(self.run_dir / "metrics.jsonl", self.epoch)
        last: dict[str, Any] = {}
        while self.epoch < cfg.epochs:
            start = time.perf_counter()
            train_m = self._run_epoch(True, progress)
            with torch.no_grad():
                val_m = self._run_epoch(False, progress)
            if not _numbers(val_m):  # before it is saved over the last good checkpoint
                raise self._diverged("on the validation images")
            self.epoch += 1
            last = {
                "epoch": self.epoch,
                "step": self.step,
                "seconds": round(time.perf_counter() - start, 2),
                "lr_g": self.opt_g.param_groups[0]["lr"],
                "train": train_m,
                "val": val_m,
            }
            rngs = self.dist.gather(self._rng())  # every rank, before rank 0 writes the checkpoint
            if self.dist.main:
                self._end_epoch(last, rngs)
            progress.epoch_table(last)
        # ranks finish together: one tearing gloo down while rank 0 still wrote its last
        # checkpoint aborted in about 1 run in 4 ("terminate called without an active exception")
        self.dist.barrier()
        return last

    def _all_numbers(self, values: dict[str, float]) -> bool:
        """Whether every rank's losses of this step are numbers. Decided together: a rank whose
        own batch went wrong is a step ahead of the others, whose weights its gradients reach
        only through the next all-reduce, and stopping alone it left them to fail in that one."""
        if self.dist.world == 1:
            return _numbers(values)
        bad = torch.tensor([0.0 if _numbers(values) else 1.0], device=self.device)
        return self.dist.sum(bad).item() == 0

    def _diverged(self, where: str) -> Diverged:
        """The error to stop with, once every rank is here: the ranks decide together (their
        losses reduced), and leave together, as at the end of :meth:`fit`."""
        self.dist.barrier()
        kept = (
            f"checkpoints/last.pt still holds epoch {self.saved_epoch}"
            if self.saved_epoch
            else "no epoch was saved"
        )
        return Diverged(
            f"the run diverged: its losses were not numbers {where} in epoch {self.epoch + 1}, "
            f"which was not saved ({kept}). Start again with lower --lr-g and --lr-d, or "
            "--precision fp32, in a new --out (from checkpoints/best.pt with --init, if there is one)"
        )

    @property
    def finished(self) -> bool:
        """Every epoch trained and, on the rank that writes them, its checkpoints written."""
        return (self.saved_epoch if self.dist.main else self.epoch) >= self.cfg.epochs

    def _end_epoch(self, record: dict[str, Any], rngs: list[dict[str, torch.Tensor]]) -> None:
        # in this order, so that a run killed at any point resumes consistent: a best.pt newer
        # than last.pt is rewritten when that epoch is trained again, and metrics lines past
        # last.pt's epoch are dropped on resume (run_files.trim_metrics)
        with processes.stops_deferred():
            improved = record["val"]["gen_l1"] < self.best_val_l1
            if improved:
                self.best_val_l1 = record["val"]["gen_l1"]
            metrics = {"epoch": self.epoch, **{f"val_{k}": v for k, v in record["val"].items()}}
            state = self._state(metrics, rngs)
            with open(self.run_dir / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")
            folder = self.run_dir / "checkpoints"
            if improved:
                checkpoint.save(state, folder / "best.pt")
            run_files.save_as(state, folder / "last.pt", written=folder / "best.pt" if improved else None)
            self.saved_epoch = self.epoch
            if self.cfg.keep_epochs:
                run_files.keep_epoch(state, folder, self.epoch, self.cfg.keep_epochs)
            self.save_samples(self.run_dir / "samples" / f"epoch-{self.epoch:03d}.png")

    @torch.no_grad()
    def save_samples(self, path: Path) -> None:
        """A Figure-2.2-style grid: rows original, grey input, colorized; fixed validation images."""
        from PIL import Image

        n = min(self.cfg.samples, len(self.val_set))
        if n == 0:
            return
        self.gen.eval()
        shown = [self.val_set[i] for i in _spread(range(len(self.val_set)), n)]
        batch = torch.stack([item if self.val_set.labels is None else item[0] for item in shown])
        rgb, l_norm, _ = self._lab(batch)
        fake = self.gen(l_norm).float()
        lab = torch.cat([color.denormalise_l(l_norm), color.denormalise_ab(fake)], 1)
        grey = torch.cat([color.denormalise_l(l_norm), torch.zeros_like(fake)], 1)
        rows = [rgb, color.lab_to_rgb_nchw(grey), color.lab_to_rgb_nchw(lab)]
        s, pad = self.cfg.image_size, 2
        canvas = torch.ones(3, 3 * (s + pad) + pad, n * (s + pad) + pad)
        for r, row in enumerate(rows):
            for c in range(n):
                y, x = pad + r * (s + pad), pad + c * (s + pad)
                canvas[:, y : y + s, x : x + s] = row[c].cpu()
        image = Image.fromarray((canvas.permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).byte().numpy())
        zoom = max(1, 96 // s)  # CIFAR's 32 px tiles are shown at 96 px, pixels kept sharp
        image = image.resize((image.width * zoom, image.height * zoom), Image.NEAREST)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)

    def close(self) -> None:
        # the DDP wrappers hold the process group: released first, its gloo threads end here
        # and not at interpreter exit, where a rank aborted now and then after a diverged run
        # ("terminate called without an active exception", about 1 run in 100)
        del self.gen_ddp, self.disc_ddp, self.classifier_ddp
        gc.collect()
        self.dist.close()
