"""The U-Net's fast paths (training and int8 inference) compute what the stock PyTorch layers compute."""

import pytest
import torch
from torch import nn

from colorcli.models import layers


def _forward_and_grads(module: nn.Module, x: torch.Tensor, grad: torch.Tensor, amp: bool):
    x = x.detach().requires_grad_()
    with torch.autocast("cpu", enabled=amp):
        y = module(x)
    gx, gw = torch.autograd.grad(y, (x, module.weight), grad.to(y.dtype))
    return y.float(), gx.float(), gw.float()


def _stock(module: nn.Module) -> nn.Module:
    """The same weights in the plain PyTorch class, which never takes the fast path."""
    base = nn.ConvTranspose2d if isinstance(module, layers.Up) else nn.Conv2d
    plain = base(module.in_channels, module.out_channels, 4, stride=2, padding=1, bias=False)
    plain.load_state_dict(module.state_dict())
    return plain


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("amp", [False, True])
@pytest.mark.parametrize(
    "cls, h, w",
    [
        (layers.Down, 4, 4),  # 2×2 output: every product a matrix product
        (layers.Down, 5, 3),  # odd sizes, 2×1 output
        (layers.Down, 8, 6),  # 4×3 output: weight gradient as a matrix product
        (layers.Down, 16, 16),  # 8×8 output: stock layer
        (layers.Up, 2, 2),
        (layers.Up, 1, 3),
        (layers.Up, 4, 4),
        (layers.Up, 8, 8),
    ],
)
def test_strided_layers_match_stock_convolutions(cls, h, w, amp, layout):
    torch.manual_seed(0)
    module = cls(12, 8).train().to(memory_format=layout)
    x = torch.randn(3, 12, h, w).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", enabled=amp):
        shape = module(x).shape
    grad = torch.randn(shape)
    ours = _forward_and_grads(module, x, grad, amp)
    stock = _forward_and_grads(_stock(module), x, grad, amp)
    tolerance = 2e-2 if amp else 1e-5  # bf16 keeps 8 bits: its results round at 2⁻⁸
    for name, a, b in zip(("output", "input gradient", "weight gradient"), ours, stock, strict=True):
        assert a.shape == b.shape, name
        assert (a - b).norm() <= tolerance * b.norm(), name


@pytest.mark.parametrize(
    "size, train, taken",
    [(8, True, True), (32, True, False), (8, False, False)],
)
def test_the_fast_path_runs_only_where_it_pays(monkeypatch, size, train, taken):
    """A layer that silently fell back to the stock path would pass the test above."""
    calls = []
    apply = layers._StridedConv.apply
    monkeypatch.setattr(layers._StridedConv, "apply", lambda *a: calls.append(1) or apply(*a))
    module = layers.Down(8, 8).train(train)
    module(torch.randn(2, 8, size, size)).sum().backward()
    assert bool(calls) == taken


def test_dropout_keeps_the_expected_share_and_scale_and_is_identity_in_eval():
    torch.manual_seed(0)
    drop = layers.Dropout(0.25)
    x = torch.ones(64, 32, 8, 8)
    y = drop(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.01
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.75))
    assert torch.equal(drop.eval()(x), x)


@pytest.mark.parametrize("with_norm", [False, True])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (3, 5), (8, 8)])
def test_the_subpixel_form_of_an_up_step_is_the_same_map(with_norm, h, w):
    torch.manual_seed(h * w)
    up = layers.Up(5, 3)
    norm = nn.BatchNorm2d(3).eval()
    with torch.no_grad():  # stats far from the defaults, so a wrong fold shows
        norm.weight.uniform_(0.5, 2)
        norm.bias.normal_()
        norm.running_mean.normal_()
        norm.running_var.uniform_(0.2, 3)
    stock = nn.Sequential(up, norm) if with_norm else up
    x = torch.randn(2, 5, h, w)
    with torch.no_grad():
        expected = stock.eval()(x)
        got = up.as_subpixel(norm if with_norm else None)(x)
    assert got.shape == (2, 3, 2 * h, 2 * w)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
