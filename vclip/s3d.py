"""The S3D-G video network that made VideoCLIP's input features (the MIL-NCE HowTo100M model).

Paper: Miech, Alayrac, Smaira, Laptev, Sivic and Zisserman, "End-to-End Learning of Visual
Representations from Uncurated Instructional Videos", CVPR 2020 (arXiv 1912.06430); the network is
S3D-G of Xie et al., "Rethinking Spatiotemporal Feature Learning", ECCV 2018 (arXiv 1712.04851).
VideoCLIP (Xu et al. 2021, section 4.1 "Video encoder") keeps this network frozen and trains only on
its 512-d per-second ``video_embedding`` outputs.

Reference files: ``mmpt/processors/models/s3dg.py`` in fairseq ``examples/MMPT`` (identical to
``s3dg.py`` of antoine77340/S3D_HowTo100M). This is a re-implementation in torch
alone, organised top to bottom: the three building blocks (``STConv3D``, ``SelfGating``,
``TFSameMaxPool3d``), the gated ``InceptionBlock``, then ``S3D`` and ``load_s3d_weights``.

Parameter and buffer names are those of the official ``s3d_howto100m.pth`` so that the released
weights load strictly. The reference's text branch (``text_module.*``: a word-embedding sentence
encoder VideoCLIP never uses) is not built; its keys are accepted and ignored by ``load_s3d_weights``.

Faithful details worth knowing:
* Batch norm uses PyTorch's default ``eps=1e-5``: the reference builds ``nn.BatchNorm3d(c)`` with no
  arguments, and its eps is not stored in the checkpoint. (The TensorFlow original used 1e-3; pass
  ``S3DConfig(bn_eps=1e-3)`` to study the difference.)
* "TF-SAME" max pooling is emulated as the reference does it: a static zero pad of
  ``max(k - s, 0)`` (smaller half first), then ``ceil_mode=True``. Inputs of these pools are
  non-negative (they follow a ReLU), so the zero pad never wins a max. On even sizes this equals
  TensorFlow's SAME pooling; on odd sizes with k=3, s=2 the output size agrees but the windows start
  one step earlier than TensorFlow's (pad 0/1 instead of 1/1). In the 30x224x224 recipe this happens
  once, on the 15 time steps entering ``maxpool_4a``. We keep the reference's arithmetic because the
  released features were computed with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

logger = logging.getLogger(__name__)

OFFICIAL_WEIGHTS_URL = "https://www.rocq.inria.fr/cluster-willow/amiech/howto100m/s3d_howto100m.pth"
OFFICIAL_DICT_URL = "https://www.rocq.inria.fr/cluster-willow/amiech/howto100m/s3d_dict.npy"
WEIGHTS_HELP = (
    "The official S3D video weights of MIL-NCE (Miech et al. 2020) are s3d_howto100m.pth from "
    f"{OFFICIAL_WEIGHTS_URL} (the word list s3d_dict.npy of its unused text branch is at "
    f"{OFFICIAL_DICT_URL}); see github.com/antoine77340/S3D_HowTo100M."
)


@dataclass
class S3DConfig:
    embedding_dim: int = 512  # the fc head 1024 -> 512 gives "video_embedding", VideoCLIP's input features
    bn_eps: float = 1e-5  # reference: nn.BatchNorm3d default (the TF original used 1e-3), not in the checkpoint
    gating: bool = True  # S3D-G self-gating after conv_2c and on every inception branch


# Inception channel table (Xie et al. 2018, Table / reference s3dg.py): name -> (b0, b1a, b1b, b2a, b2b, b3b).
INCEPTION_CHANNELS: dict[str, tuple[int, int, int, int, int, int]] = {
    "mixed_3b": (64, 96, 128, 16, 32, 32),
    "mixed_3c": (128, 128, 192, 32, 96, 64),
    "mixed_4b": (192, 96, 208, 16, 48, 64),
    "mixed_4c": (160, 112, 224, 24, 64, 64),
    "mixed_4d": (128, 128, 256, 24, 64, 64),
    "mixed_4e": (112, 144, 288, 32, 64, 64),
    "mixed_4f": (256, 160, 320, 32, 128, 128),
    "mixed_5b": (256, 160, 320, 32, 128, 128),
    "mixed_5c": (384, 192, 384, 48, 128, 128),
}


class STConv3D(nn.Module):
    """Conv3d (no bias) + BatchNorm + ReLU; ``separable`` factorises a (k, k, k) kernel into a spatial
    (1, k, k) conv and a temporal (k, 1, 1) conv, each with its own BatchNorm and ReLU (S3D's "sep-conv").

    Keys: ``conv1.weight``, ``bn1.*`` and, when separable, ``conv2.weight``, ``bn2.*``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int, int],
                 padding: int | tuple[int, int, int] = 0, separable: bool = False, bn_eps: float = 1e-5):
        super().__init__()
        kt, kh, kw = kernel_size
        pt, ph, pw = (padding,) * 3 if isinstance(padding, int) else padding
        self.separable = separable and kt != 1
        if self.separable:
            self.conv1 = nn.Conv3d(in_channels, out_channels, (1, kh, kw), padding=(0, ph, pw), bias=False)
            self.bn1 = nn.BatchNorm3d(out_channels, eps=bn_eps)
            self.conv2 = nn.Conv3d(out_channels, out_channels, (kt, 1, 1), padding=(pt, 0, 0), bias=False)
            self.bn2 = nn.BatchNorm3d(out_channels, eps=bn_eps)
        else:
            self.conv1 = nn.Conv3d(in_channels, out_channels, kernel_size, padding=(pt, ph, pw), bias=False)
            self.bn1 = nn.BatchNorm3d(out_channels, eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        if self.separable:
            x = F.relu(self.bn2(self.conv2(x)))
        return x


class SelfGating(nn.Module):
    """S3D-G feature gating: x * sigmoid(W mean_{t,h,w}(x) + b), one gate per channel. Key: ``fc.*``."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))  # (B, C)
        return gate[:, :, None, None, None] * x


def tf_same_padding(kernel_size: tuple[int, int, int], stride: tuple[int, int, int]) -> tuple[int, ...]:
    """The reference's static "SAME" pad in ``F.pad`` order (w_lo, w_hi, h_lo, h_hi, t_lo, t_hi):
    ``max(k - s, 0)`` per dimension, the smaller half first."""
    pads: list[int] = []
    for k, s in reversed(list(zip(kernel_size, stride))):
        total = max(k - s, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class TFSameMaxPool3d(nn.Module):
    """Max pooling with the reference's emulation of TensorFlow SAME padding (see module docstring):
    zero pad ``tf_same_padding(kernel, stride)``, then ``max_pool3d(..., ceil_mode=True)``."""

    def __init__(self, kernel_size: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel_size, self.stride = tuple(kernel_size), tuple(stride)
        self.padding = tf_same_padding(self.kernel_size, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.padding, mode="constant", value=0.0)
        return F.max_pool3d(x, self.kernel_size, self.stride, ceil_mode=True)


class InceptionBlock(nn.Module):
    """Gated separable Inception block: four branches concatenated on channels.

    b0: 1x1x1 conv; b1: 1x1x1 conv -> separable 3x3x3; b2: 1x1x1 conv -> separable 3x3x3;
    b3: 3x3x3 max pool (stride 1, pad 1) -> 1x1x1 conv. Each branch is self-gated when ``gating``.
    (B, C_in, T, H, W) -> (B, b0 + b1b + b2b + b3b, T, H, W).
    """

    def __init__(self, in_channels: int, channels: tuple[int, int, int, int, int, int],
                 gating: bool = True, bn_eps: float = 1e-5):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3b = channels
        self.conv_b0 = STConv3D(in_channels, b0, (1, 1, 1), bn_eps=bn_eps)
        self.conv_b1_a = STConv3D(in_channels, b1a, (1, 1, 1), bn_eps=bn_eps)
        self.conv_b1_b = STConv3D(b1a, b1b, (3, 3, 3), padding=1, separable=True, bn_eps=bn_eps)
        self.conv_b2_a = STConv3D(in_channels, b2a, (1, 1, 1), bn_eps=bn_eps)
        self.conv_b2_b = STConv3D(b2a, b2b, (3, 3, 3), padding=1, separable=True, bn_eps=bn_eps)
        self.conv_b3_b = STConv3D(in_channels, b3b, (1, 1, 1), bn_eps=bn_eps)
        self.gating = gating
        if gating:
            self.gating_b0 = SelfGating(b0)
            self.gating_b1 = SelfGating(b1b)
            self.gating_b2 = SelfGating(b2b)
            self.gating_b3 = SelfGating(b3b)
        self.out_channels = b0 + b1b + b2b + b3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.conv_b0(x)
        b1 = self.conv_b1_b(self.conv_b1_a(x))
        b2 = self.conv_b2_b(self.conv_b2_a(x))
        # PyTorch's max pool pads with -inf: the stride-1 pool keeps the borders' own values.
        b3 = self.conv_b3_b(F.max_pool3d(x, kernel_size=3, stride=1, padding=1))
        if self.gating:
            b0, b1, b2, b3 = self.gating_b0(b0), self.gating_b1(b1), self.gating_b2(b2), self.gating_b3(b3)
        return torch.cat((b0, b1, b2, b3), dim=1)


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, 8C, T/2, H/2, W/2): each 2x2x2 block of pixels becomes 8 channel groups,
    ordered (dt, dh, dw, c) as in the reference (the TPU-friendly input of the released model)."""
    b, c, t, h, w = x.shape
    x = x.view(b, c, t // 2, 2, h // 2, 2, w // 2, 2)
    x = x.permute(0, 3, 5, 7, 1, 2, 4, 6)  # (B, dt, dh, dw, C, T/2, H/2, W/2)
    return x.reshape(b, 8 * c, t // 2, h // 2, w // 2)


class S3D(nn.Module):
    """S3D-G with the space-to-depth stem, as released with MIL-NCE (video branch only).

    ``forward(x)`` takes frames (B, 3, T, H, W) in [0, 1] (no mean/std normalisation) with T, H and W
    even, and returns ``{"video_embedding": (B, 512), "mixed_5c": (B, 1024)}``. The feature recipe feeds
    one 30-frame, 224x224 chunk per second of video (see ``vclip.video``).
    """

    def __init__(self, config: S3DConfig | None = None):
        super().__init__()
        self.config = config = config or S3DConfig()
        eps = config.bn_eps
        # Stem: space-to-depth turns (3, T, H, W) into (24, T/2, H/2, W/2); a 2x4x4 conv replaces 7x7x7 /2.
        self.conv1 = STConv3D(24, 64, (2, 4, 4), padding=(1, 2, 2), bn_eps=eps)
        self.maxpool_2a = TFSameMaxPool3d((1, 3, 3), (1, 2, 2))
        self.conv_2b = STConv3D(64, 64, (1, 1, 1), bn_eps=eps)
        self.conv_2c = STConv3D(64, 192, (3, 3, 3), padding=1, separable=True, bn_eps=eps)
        if config.gating:
            self.gating = SelfGating(192)
        self.maxpool_3a = TFSameMaxPool3d((1, 3, 3), (1, 2, 2))
        channels = 192
        blocks = {}
        for name, widths in INCEPTION_CHANNELS.items():
            blocks[name] = InceptionBlock(channels, widths, gating=config.gating, bn_eps=eps)
            channels = blocks[name].out_channels
        self.mixed_3b, self.mixed_3c = blocks["mixed_3b"], blocks["mixed_3c"]
        self.maxpool_4a = TFSameMaxPool3d((3, 3, 3), (2, 2, 2))
        self.mixed_4b, self.mixed_4c, self.mixed_4d = blocks["mixed_4b"], blocks["mixed_4c"], blocks["mixed_4d"]
        self.mixed_4e, self.mixed_4f = blocks["mixed_4e"], blocks["mixed_4f"]
        self.maxpool_5a = TFSameMaxPool3d((2, 2, 2), (2, 2, 2))
        self.mixed_5b, self.mixed_5c = blocks["mixed_5b"], blocks["mixed_5c"]
        self.fc = nn.Linear(channels, config.embedding_dim)  # channels == 1024

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"S3D expects frames (B, 3, T, H, W); got shape {tuple(x.shape)}")
        if any(size % 2 for size in x.shape[2:]):
            raise ValueError(f"S3D's space-to-depth stem needs even T, H and W; got {tuple(x.shape[2:])}")
        x = self.conv1(space_to_depth(x))  # (B, 64, T/2 + 1, H/2 + 1, W/2 + 1)
        x = x[:, :, 1:, 1:, 1:]  # the reference's emulation of TF SAME for the 2x4x4 conv
        x = self.maxpool_2a(x)
        x = self.conv_2c(self.conv_2b(x))
        if self.config.gating:
            x = self.gating(x)
        x = self.maxpool_3a(x)
        x = self.mixed_3c(self.mixed_3b(x))
        x = self.maxpool_4a(x)
        for block in (self.mixed_4b, self.mixed_4c, self.mixed_4d, self.mixed_4e, self.mixed_4f):
            x = block(x)
        x = self.maxpool_5a(x)
        x = self.mixed_5c(self.mixed_5b(x))  # (B, 1024, T', H', W')
        mixed_5c = x.mean(dim=(2, 3, 4))  # (B, 1024)
        return {"video_embedding": self.fc(mixed_5c), "mixed_5c": mixed_5c}


def load_s3d_weights(path: str | Path, config: S3DConfig | None = None) -> S3D:
    """Build an ``S3D`` in eval mode and load ``s3d_howto100m.pth`` (or any file with its keys) strictly.

    Accepted and ignored: the unused text branch (``text_module.*``), and a ``module.`` prefix on every
    key (files saved from ``DataParallel``). A file missing ``*.num_batches_tracked`` loads (PyTorch
    fills that bookkeeping buffer). Any other missing or unexpected key, or a shape mismatch, raises.
    """
    from vclip.errors import CheckpointError
    from vclip.weights import load_state_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"S3D weights not found: {path}. {WEIGHTS_HELP}")
    try:  # torch.load(weights_only=True): nothing in the file runs
        state = load_state_file(path)
    except CheckpointError:
        with open(path, "rb") as handle:
            head = handle.read(12)
        found = ("a torch.save archive holding more than tensors, or a damaged one" if head.startswith(b"PK") else
                 "a pickle of other objects (not unpickled: that could run code)" if head[:1] == b"\x80" else
                 f"neither a torch.save file nor a pickle (it starts {head!r})")
        raise ValueError(f"{path}: expected S3D weights (a state_dict of tensors saved by torch.save, like "
                         f"s3d_howto100m.pth), found {found}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state_dict (a dict of tensors) like s3d_howto100m.pth")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    ignored = [k for k in state if k.startswith("text_module.")]
    state = {k: v for k, v in state.items() if not k.startswith("text_module.")}
    if ignored:
        logger.info("ignored %d text-branch keys (text_module.*) of %s", len(ignored), path.name)
    model = S3D(config)
    expected = model.state_dict()
    wrong_shape = {k: (tuple(v.shape), tuple(expected[k].shape)) for k, v in state.items()
                   if k in expected and v.shape != expected[k].shape}
    if wrong_shape:
        raise ValueError(f"{path}: shape mismatch (file, model) for {len(wrong_shape)} keys, e.g. "
                         f"{dict(list(wrong_shape.items())[:5])}")
    missing = sorted(set(expected) - set(state) - {k for k in expected if k.endswith("num_batches_tracked")})
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: not an S3D video checkpoint: {len(missing)} missing keys {missing[:5]}, "
                         f"{len(unexpected)} unexpected keys {unexpected[:5]}. {WEIGHTS_HELP}")
    for key in expected:  # an absent counter is filled with the model's own (zero) value
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = expected[key]
    model.load_state_dict(state, strict=True)
    return model.eval()
