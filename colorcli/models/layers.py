"""Small building blocks shared by the generators."""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad H and W up to a multiple, so any image size passes the strided layers.

    Returns the padded tensor and the original height and width to crop back to.
    """
    h, w = x.shape[-2], x.shape[-1]
    ph, pw = (-h) % multiple, (-w) % multiple
    # reflect as far as the side allows, replicate the rest: no branch on the size, so an
    # exported graph pads tiny inputs exactly as PyTorch does
    rh, rw = min(ph, h - 1), min(pw, w - 1)
    x = F.pad(x, (0, rw, 0, rh), mode="reflect")
    x = F.pad(x, (0, pw - rw, 0, ph - rh), mode="replicate")
    return x, h, w


def xavier_init(module: nn.Module) -> None:
    """Uniform Xavier for every (transposed) convolution, as the paper initialises them."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def conv_bn_relu(cin: int, cout: int, **conv: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, bias=False, **conv), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ResidualBlock(nn.Module):
    """x + (pad, 3×3 conv, BN, ReLU, pad, 3×3 conv, BN)(x), as pix2pix's ResNet blocks."""

    def __init__(self, channels: int, pad: type[nn.Module] = nn.ReflectionPad2d) -> None:
        super().__init__()
        self.body = nn.Sequential(
            pad(1),
            *conv_bn_relu(channels, channels, kernel_size=3),
            pad(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


# The U-Net's resampling convolutions: 4×4 kernels, stride 2, padding 1, no bias.
_KERNEL, _STRIDE, _PAD = 4, 2, 1
# Where the smaller of a layer's two maps has few positions, oneDNN on CPU runs these layers far
# below its speed elsewhere (bf16, batch 32): the weight gradient 3-4× slower than the forward at
# 2×2 and 4×4, and at 2×2 the forward and input gradient spend as long again transposing the 4 M
# weights. There matrix products do the work instead (training/REPORT.md has the figures).
_GEMM_WEIGHT_GRAD_POSITIONS = 16
_GEMM_ALL_POSITIONS = 4


def _patches(z: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """The 4×4 patches a stride-2 convolution reads from ``z``: (N·rows·cols, C·16), channel-major."""
    zp = F.pad(z, (_PAD,) * 4).permute(0, 2, 3, 1)
    taps = [
        zp[:, i : i + _STRIDE * rows : _STRIDE, j : j + _STRIDE * cols : _STRIDE, :]
        for i in range(_KERNEL)
        for j in range(_KERNEL)
    ]
    return torch.stack(taps, -1).reshape(-1, z.shape[1] * _KERNEL * _KERNEL)


def _fold(patches: torch.Tensor, n: int, height: int, width: int) -> torch.Tensor:
    """The adjoint of ``_patches``: sums patch rows back into an (N, C, height, width) map."""
    # summed in fp32: up to four overlapping taps per pixel
    cols = patches.float().view(n, -1, patches.shape[1]).transpose(1, 2)
    folded = F.fold(cols, (height, width), _KERNEL, padding=_PAD, stride=_STRIDE)
    return folded.to(patches.dtype).contiguous(memory_format=torch.channels_last)


def _as_rows(z: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N·H·W, C): free for a channels_last map."""
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def _as_map(rows: torch.Tensor, n: int, height: int, width: int) -> torch.Tensor:
    """(N·H·W, C) -> a channels_last (N, C, H, W) view."""
    return rows.view(n, height, width, -1).permute(0, 3, 1, 2)


class _StridedConv(torch.autograd.Function):
    """A 4×4 stride-2 (transposed) convolution whose weight gradient is the matrix product of
    the small map's rows with the large map's patches, returned contiguous so fused Adam does
    not copy it; with ``all_gemm`` the forward and the input gradient are matrix products too."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, transposed: bool, all_gemm: bool
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.transposed, ctx.all_gemm = transposed, all_gemm
        if not all_gemm:
            conv = F.conv_transpose2d if transposed else F.conv2d
            return conv(x, weight, stride=_STRIDE, padding=_PAD)
        n, _, h, w = x.shape
        matrix = weight.reshape(weight.shape[0], -1)  # (out, in·16), or (in, out·16) transposed
        if transposed:
            return _fold(_as_rows(x) @ matrix, n, h * _STRIDE, w * _STRIDE)
        return _as_map(_patches(x, h // _STRIDE, w // _STRIDE) @ matrix.t(), n, h // _STRIDE, w // _STRIDE)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, None, None]:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous(memory_format=torch.channels_last)
        # a convolution's weight pairs its output (small map) with patches of its input; a
        # transposed one, its input (small map) with patches of its output
        small, large = (x, grad) if ctx.transposed else (grad, x)
        patches = _patches(large, small.shape[2], small.shape[3])
        grad_w = (_as_rows(small).t() @ patches).view(weight.shape)
        grad_x = _StridedConv._input_grad(ctx, grad, patches) if ctx.needs_input_grad[0] else None
        return grad_x, grad_w, None, None

    @staticmethod
    def _input_grad(ctx: Any, grad: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        x, weight = ctx.saved_tensors
        n, _, h, w = x.shape
        if not ctx.all_gemm:
            return torch.ops.aten.convolution_backward(
                grad,
                x,
                weight,
                None,
                [_STRIDE] * 2,
                [_PAD] * 2,
                [1, 1],
                ctx.transposed,
                [0, 0],
                1,
                [True, False, False],
            )[0]
        matrix = weight.reshape(weight.shape[0], -1)
        if ctx.transposed:  # the patches are of the output gradient here
            return _as_map(patches @ matrix.t(), n, h, w)
        return _fold(_as_rows(grad) @ matrix, n, h, w)


def _strided(module: nn.Module, x: torch.Tensor, positions: int, transposed: bool) -> torch.Tensor | None:
    """The layer's output through ``_StridedConv`` where that is faster, else None.

    ``positions`` counts the smaller of the layer's two maps. Only CPU training takes this path;
    inference, export and CUDA run the stock layer.
    """
    if not (module.training and torch.is_grad_enabled() and x.device.type == "cpu"):
        return None
    if positions > _GEMM_WEIGHT_GRAD_POSITIONS:
        return None
    weight = module.weight
    # the Function runs outside autocast, so cast as autocast would, and let autograd carry the
    # gradient back through the cast to the fp32 weight
    if torch.is_autocast_enabled("cpu"):
        dtype = torch.get_autocast_dtype("cpu")
        x, weight = x.to(dtype), weight.to(dtype)
    with torch.autocast("cpu", enabled=False):
        return _StridedConv.apply(
            x.contiguous(memory_format=torch.channels_last),
            weight,
            transposed,
            positions <= _GEMM_ALL_POSITIONS,
        )


class Down(nn.Conv2d):
    """4×4 stride-2 convolution, no bias: halves H and W."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, _KERNEL, stride=_STRIDE, padding=_PAD, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = (x.shape[2] // _STRIDE) * (x.shape[3] // _STRIDE)
        y = _strided(self, x, positions, transposed=False)
        return super().forward(x) if y is None else y


class Up(nn.ConvTranspose2d):
    """4×4 stride-2 transposed convolution, no bias: doubles H and W."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, _KERNEL, stride=_STRIDE, padding=_PAD, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = _strided(self, x, x.shape[2] * x.shape[3], transposed=True)
        return super().forward(x) if y is None else y

    @torch.no_grad()
    def as_subpixel(self, norm: nn.BatchNorm2d | None = None) -> nn.Sequential:
        """The same map, with an eval-mode ``norm`` that follows it folded in, as a 3×3
        convolution to four times the channels and a pixel shuffle (Shi et al. 2016).

        Output pixel (2i + r) draws on input pixels i - 1 and i for r = 0 (kernel taps 3, 1) and
        on i and i + 1 for r = 1 (taps 2, 0); one 3×3 window covers both phases, with zeros
        where a phase has no tap. onnxruntime quantizes convolutions to int8 but runs
        transposed ones in float, where they took 70 % of the int8 U-Net's time.
        """
        cin, cout = self.in_channels, self.out_channels
        taps = ((3, 1, None), (None, 2, 0))  # [phase][window offset] -> kernel tap
        weight = self.weight.new_zeros(cout, 2, 2, cin, 3, 3)
        for ry, rx, ty, tx in itertools.product(range(2), range(2), range(3), range(3)):
            ky, kx = taps[ry][ty], taps[rx][tx]
            if ky is not None and kx is not None:
                weight[:, ry, rx, :, ty, tx] = self.weight[:, :, ky, kx].T
        bias = self.weight.new_zeros(cout)
        if norm is not None:
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            weight *= scale.view(cout, 1, 1, 1, 1, 1)
            bias = norm.bias - norm.running_mean * scale
        conv = nn.Conv2d(cin, 4 * cout, 3, padding=1)
        conv.weight.copy_(weight.view(4 * cout, cin, 3, 3))
        conv.bias.copy_(bias.repeat_interleave(4))  # pixel shuffle reads channel o*4 + 2*ry + rx
        return nn.Sequential(conv, nn.PixelShuffle(2))


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask comes from ``torch.rand``: ``bernoulli_`` there is about 4×
    slower, and at CIFAR size the U-Net's two dropout layers cost 3 % of a training step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        keep = torch.rand_like(x, dtype=torch.float32) >= self.p
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))
