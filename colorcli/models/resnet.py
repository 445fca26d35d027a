"""ResNet generator of the paper's §1.1 (after pix2pix's ``ResnetGenerator``), for any input size."""

from __future__ import annotations

import torch
from torch import nn

from colorcli.models.layers import ResidualBlock, conv_bn_relu, pad_to_multiple, xavier_init


class ResNetGenerator(nn.Module):
    """L (N, 1, H, W) -> a,b (N, 2, H, W): 7×7 stem, two stride-2 convs, ``blocks`` residual
    blocks, two stride-2 transposed convs, 7×7 conv to 2 channels and tanh."""

    multiple = 4

    def __init__(self, width: int = 64, blocks: int = 9) -> None:
        super().__init__()
        w = width
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), *conv_bn_relu(1, w, kernel_size=7)]
        layers += conv_bn_relu(w, 2 * w, kernel_size=3, stride=2, padding=1)
        layers += conv_bn_relu(2 * w, 4 * w, kernel_size=3, stride=2, padding=1)
        layers += [ResidualBlock(4 * w) for _ in range(blocks)]
        for cin, cout in ((4 * w, 2 * w), (2 * w, w)):
            layers += [
                nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        head = nn.Conv2d(w, 2, 7)
        layers += [nn.ReflectionPad2d(3), head, nn.Tanh()]
        self.net = nn.Sequential(*layers)
        xavier_init(self)
        nn.init.zeros_(head.weight)  # start from "no colour", as the U-Net does

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, h, w = pad_to_multiple(x, self.multiple)
        return self.net(x)[..., :h, :w]
