"""The GAN's losses and the paper's per-epoch figures (adversarial and L1 losses,
discriminator loss and accuracy) plus PSNR, in torch, for :mod:`colorcli.trainer`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from colorcli import processes


def bce(scores: torch.Tensor, target: float) -> torch.Tensor:
    # scores are pre-tanh; tanh(z) read as a probability (1 + tanh z) / 2 is sigmoid(2z)
    # (see models/discriminators.py), so this is BCE on the paper's tanh output, stably
    return F.binary_cross_entropy_with_logits(2.0 * scores.float(), torch.full_like(scores.float(), target))


def decisions(scores: torch.Tensor) -> torch.Tensor:
    """One real/fake decision per image: the mean of its patch (or pixel) tanh scores > 0."""
    return torch.tanh(scores.float()).flatten(1).mean(1) > 0


def at_chroma_of(ab: torch.Tensor, like: torch.Tensor, grey: float = 0.02) -> torch.Tensor:
    """``ab``'s hues at ``like``'s chroma, pixel by pixel.

    A discriminator shown real colours this way cannot tell real from fake by saturation, the
    one thing a per-pixel judge learns first and a colour gain gives as well; it can only judge
    hue, such as the violet a blend of a red and a blue guess makes. Pixels greyer than ``grey``
    (normalised, about 2 a,b units) have no hue to lend: they are scaled as if their chroma were
    ``grey``, so they stay near grey rather than lend noise a full chroma.
    """
    chroma = ab.float().norm(dim=1, keepdim=True)
    target = like.float().norm(dim=1, keepdim=True)
    return (ab.float() * (target / chroma.clamp_min(grey))).to(ab.dtype)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [0, 1], (N, C, H, W) -> (N,)."""
    mse = (pred - target).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return -10.0 * torch.log10(mse)


class Metrics:
    """Running sums of the paper's four figures plus PSNR (and with ``classes``, the class
    loss and accuracy), reduced across DDP ranks."""

    def __init__(self, classes: bool = False) -> None:
        self.names = ("gen_adv", "gen_l1", "disc_loss", "disc_acc", "psnr")
        self.names += ("class_loss", "class_acc") if classes else ()
        self.sums = torch.zeros(len(self.names) + 1, dtype=torch.float64)

    def add(self, n: int, **values: float) -> None:
        for i, name in enumerate(self.names):
            self.sums[i] += values[name] * n
        self.sums[-1] += n

    def result(self, dist: processes.Distributed, device: torch.device) -> dict[str, float]:
        sums = dist.sum(self.sums.to(device)).cpu()
        n = max(sums[-1].item(), 1.0)
        return {name: round(sums[i].item() / n, 6) for i, name in enumerate(self.names)}

    def running(self) -> dict[str, float]:
        n = max(self.sums[-1].item(), 1.0)
        return {name: self.sums[i].item() / n for i, name in enumerate(self.names)}
