"""The colour-class head: its cross-entropy against a brute-force reference, the annealed mean,
and a U-Net built with it at any size."""

import pytest
import torch

from colorcli.models import build_generator
from colorcli.models.colour_classes import ColourClasses


def reference_cross_entropy(head: ColourClasses, logits: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Pixel by pixel: bilinear soft target over the four nearest cell centres, scored under
    the distribution of the low-resolution cell the pixel falls in."""
    bins, stride = head.bins, head.stride
    log_p = torch.log_softmax(logits, 1)
    n, _, h, w = ab.shape
    out = torch.zeros(n, 1, h, w)
    for i in range(n):
        for y in range(h):
            for x in range(w):
                target = torch.zeros(bins * bins)
                pos = [min(max(float(v + 1) * bins / 2 - 0.5, 0.0), bins - 1) for v in ab[i, :, y, x]]
                cells = [min(int(p), bins - 2) for p in pos]
                fracs = [p - c for p, c in zip(pos, cells, strict=True)]
                for da, wa in ((0, 1 - fracs[0]), (1, fracs[0])):
                    for db, wb in ((0, 1 - fracs[1]), (1, fracs[1])):
                        target[(cells[0] + da) * bins + cells[1] + db] += wa * wb
                out[i, 0, y, x] = -(target * log_p[i, :, y // stride, x // stride]).sum()
    return out


@pytest.mark.parametrize(("bins", "stride"), [(5, 2), (4, 1)])
def test_cross_entropy_matches_a_pixel_by_pixel_reference(bins, stride):
    torch.manual_seed(0)
    head = ColourClasses(4, bins, 0.38, stride)
    logits = torch.randn(2, bins * bins, 3, 4)
    ab = torch.rand(2, 2, 3 * stride, 4 * stride) * 2.2 - 1.1  # a little outside the grid too
    assert torch.allclose(
        head.cross_entropy(logits, ab), reference_cross_entropy(head, logits, ab), atol=1e-5
    )


def test_a_colour_on_a_cell_centre_costs_nothing_under_its_own_certain_cell():
    head = ColourClasses(4, 6, 0.38, stride=1)
    cell = 2 * 6 + 4
    logits = torch.full((1, 36, 1, 1), -40.0)
    logits[0, cell] = 40.0
    centre = head.centres[:, cell].view(1, 2, 1, 1)
    assert head.cross_entropy(logits, centre).item() == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(head.annealed_mean(logits), centre)


def test_annealed_mean_runs_from_the_mean_to_the_mode():
    head = ColourClasses(4, 4, 1.0, stride=1)
    probs = torch.zeros(16)
    probs[0], probs[15] = 0.6, 0.4  # two opposite corners of the a,b grid
    logits = probs.clamp_min(1e-12).log().view(1, 16, 1, 1)
    mean = (head.centres.view(2, 16) * probs).sum(1)
    assert torch.allclose(head.annealed_mean(logits).flatten(), mean, atol=1e-5)
    head.temperature = 0.05
    assert torch.allclose(head.annealed_mean(logits).flatten(), head.centres[:, 0].flatten(), atol=1e-3)


@pytest.mark.parametrize(("h", "w"), [(32, 32), (35, 35), (40, 57)])
def test_unet_with_colour_classes_at_any_size_and_every_parameter_learns(h, w):
    gen = build_generator("unet-sn", {"width": 4, "depth": 2, "colour_bins": 6, "colour_stride": 4})
    l_in = torch.rand(2, 1, h, w) * 2 - 1
    ab, logits, context = gen(l_in, logits=True)
    assert ab.shape == (2, 2, h, w) and ab.abs().max() <= 1.0
    assert logits.shape[:2] == (2, 36)
    assert context.shape[:2] == (2, gen.context_channels)
    assert context.shape[-1] * gen.context_stride >= w
    with torch.no_grad():
        gen.head.conv.weight.normal_()  # the head starts at zero, which blocks the trunk's gradient
    ab, logits, context = gen(l_in, logits=True)
    target = torch.rand(2, 2, h, w) * 2 - 1
    (gen.head.cross_entropy(logits, target).mean() + (ab - target).abs().mean()).backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert torch.equal(gen.eval()(l_in), gen(l_in, logits=True)[0])


def test_logits_need_a_colour_class_head():
    with pytest.raises(ValueError, match="colour_bins"):
        build_generator("unet-sn", {"width": 4, "depth": 2})(torch.zeros(1, 1, 8, 8), logits=True)


def test_start_from_regression_begins_at_the_regression_colours():
    torch.manual_seed(1)
    head = ColourClasses(8, 22, 0.38, stride=1)
    weight, bias = torch.randn(2, 8, 1, 1) * 0.05, torch.tensor([0.1, -0.2])
    features = torch.randn(3, 8, 5, 6)
    head.start_from_regression(weight, bias)
    linear = torch.nn.functional.conv2d(features, weight, bias)
    assert (head(features) - linear).abs().max() < 0.005  # a fortieth of a cell
    assert (head(features) - torch.tanh(linear)).abs().max() < 0.03  # tanh, nearly linear here
