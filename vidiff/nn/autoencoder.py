"""KL-regularised convolutional autoencoder (the first stage of latent diffusion).

Mirrors latent-diffusion's ``AutoencoderKL`` (Rombach et al. 2022, ``ldm/models/autoencoder.py`` and the
``Encoder`` / ``Decoder`` of ``ldm/modules/diffusionmodules/model.py``) with the same module names, so a
Stable Diffusion checkpoint's ``first_stage_model.*`` keys load by dropping the prefix
(``encoder.down.0.block.1.conv1.weight``, ``quant_conv.weight``, ``decoder.up.3.upsample.conv.weight``...).

Differences from the original: resolution-agnostic (attention placement is by level index, not by pixel
resolution), the mid attention uses torch's scaled-dot-product attention, the GroupNorm group count is
configurable (tiny test models), and there are video helpers that encode / decode ``(b, t, c, h, w)`` clips
frame by frame in chunks so long videos fit in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from vidiff.arguments import check_int
from vidiff.io.atomic import atomic_path
from vidiff.io.checkpoint import load_torch_file
from vidiff.io.errors import reading, writing

__all__ = ["AutoencoderKL", "DiagonalGaussian", "load_autoencoder", "save_autoencoder"]


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=min(groups, channels), num_channels=channels, eps=1e-6, affine=True)


class DiagonalGaussian:
    """A diagonal Gaussian posterior ``q(z | x) = N(mean, exp(logvar))`` over latents ``(b, c, h, w)``.

    Args:
        parameters: ``(b, 2c, h, w)``: mean and log-variance stacked along channels.
    """

    def __init__(self, parameters: Tensor):
        self.mean, logvar = parameters.chunk(2, dim=1)
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def sample(self, generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
        """A reparameterised sample ``mean + std * eps``, ``(b, c, h, w)``.

        Args:
            generator: random generator for ``eps`` (on the device of ``mean``).
            noise: use this ``eps`` (same shape as ``mean``) instead of drawing one.
        """
        if noise is None:
            noise = torch.randn(
                self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
            )
        return self.mean + self.std * noise

    def mode(self) -> Tensor:
        """The posterior mode (= mean), ``(b, c, h, w)``."""
        return self.mean

    def kl(self) -> Tensor:
        """``KL(q || N(0, I))`` summed over ``c h w``: ``(b,)``."""
        return 0.5 * (self.mean.pow(2) + self.var - 1.0 - self.logvar).sum(dim=(1, 2, 3))


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv twice with a residual (1x1 ``nin_shortcut`` when channels change)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0, norm_groups: int = 32):
        super().__init__()
        self.norm1 = _norm(in_channels, norm_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels, norm_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the ``h w`` positions, 1x1-conv projections (ldm's ``AttnBlock``)."""

    def __init__(self, channels: int, norm_groups: int = 32):
        super().__init__()
        self.norm = _norm(channels, norm_groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (rearrange(f(y), "b c h w -> b 1 (h w) c") for f in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)  # b 1 (h w) c
        out = rearrange(out, "b 1 (h w) c -> b c h w", h=h, w=w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Stride-2 3x3 conv with ldm's asymmetric (right / bottom) zero padding."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _attn(channels: int, enabled: bool, norm_groups: int) -> nn.Module:
    return AttnBlock(channels, norm_groups) if enabled else nn.Identity()


class _Level(nn.Module):
    """One resolution level: ``block`` (ResnetBlocks), ``attn`` (empty or one per block), a resampler."""

    def __init__(self, blocks: list[nn.Module], attns: list[nn.Module]):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attns)

    def run(self, h: Tensor) -> Tensor:
        for i, block in enumerate(self.block):
            h = block(h)
            if len(self.attn) > 0:
                h = self.attn[i](h)
        return h


class _Mid(nn.Module):
    def __init__(self, channels: int, attention: bool, dropout: float, norm_groups: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout, norm_groups)
        self.attn_1 = _attn(channels, attention, norm_groups)
        self.block_2 = ResnetBlock(channels, channels, dropout, norm_groups)

    def forward(self, h: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(h)))


class Encoder(nn.Module):
    """Image ``(b, in_channels, h, w)`` -> posterior parameters ``(b, 2 z_channels, h/f, w/f)``."""

    def __init__(
        self,
        in_channels: int,
        ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        z_channels: int,
        attn_levels: Sequence[int],
        mid_attention: bool,
        dropout: float,
        norm_groups: int,
    ):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        block_in = ch
        for level, mult in enumerate(ch_mult):
            block_out = ch * mult
            blocks, attns = [], []
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(block_in, block_out, dropout, norm_groups))
                block_in = block_out
                if level in attn_levels:
                    attns.append(AttnBlock(block_in, norm_groups))
            down = _Level(blocks, attns)
            if level != len(ch_mult) - 1:
                down.downsample = Downsample(block_in)
            self.down.append(down)
        self.mid = _Mid(block_in, mid_attention, dropout, norm_groups)
        self.norm_out = _norm(block_in, norm_groups)
        self.conv_out = nn.Conv2d(block_in, 2 * z_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for down in self.down:
            h = down.run(h)
            if hasattr(down, "downsample"):
                h = down.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """Latent ``(b, z_channels, h/f, w/f)`` -> image ``(b, out_channels, h, w)``.

    ``up`` is indexed by level like the encoder's ``down`` (``up.0`` is the full-resolution level), and run
    from the coarsest level up, as in ldm.
    """

    def __init__(
        self,
        out_channels: int,
        ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        z_channels: int,
        attn_levels: Sequence[int],
        mid_attention: bool,
        dropout: float,
        norm_groups: int,
    ):
        super().__init__()
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = _Mid(block_in, mid_attention, dropout, norm_groups)
        ups: list[_Level] = []
        for level in reversed(range(len(ch_mult))):
            block_out = ch * ch_mult[level]
            blocks, attns = [], []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResnetBlock(block_in, block_out, dropout, norm_groups))
                block_in = block_out
                if level in attn_levels:
                    attns.append(AttnBlock(block_in, norm_groups))
            up = _Level(blocks, attns)
            if level != 0:
                up.upsample = Upsample(block_in)
            ups.insert(0, up)
        self.up = nn.ModuleList(ups)
        self.norm_out = _norm(block_in, norm_groups)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for up in reversed(self.up):
            h = up.run(h)
            if hasattr(up, "upsample"):
                h = up.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    """KL autoencoder with ldm's module names (``encoder``, ``decoder``, ``quant_conv``, ``post_quant_conv``).

    Stable Diffusion 1.x's first stage is ``AutoencoderKL(ch=128, ch_mult=(1, 2, 4, 4), num_res_blocks=2,
    z_channels=4, embed_dim=4)`` (the defaults), downsampling factor 8, ``scaling_factor=0.18215``.

    Args:
        in_channels: image channels.
        out_channels: reconstructed channels (default ``in_channels``).
        ch: base channel count.
        ch_mult: channel multiplier per level; the downsampling factor is ``2 ** (len(ch_mult) - 1)``.
        num_res_blocks: ResnetBlocks per encoder level (the decoder has one more).
        z_channels: channels of the encoder output / decoder input.
        embed_dim: latent channels after ``quant_conv`` (default ``z_channels``).
        attn_levels: levels (0 = full resolution) with self-attention after every block (SD: none).
        mid_attention: self-attention in the middle blocks (SD: yes).
        dropout: dropout in the ResnetBlocks.
        norm_groups: GroupNorm groups (SD: 32; capped by the channel count).
        scaling_factor: latent scale used by :meth:`encode_video` / :meth:`decode_video` so that latents
            have roughly unit variance (SD: 0.18215).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int | None = None,
        ch: int = 128,
        ch_mult: Sequence[int] = (1, 2, 4, 4),
        num_res_blocks: int = 2,
        z_channels: int = 4,
        embed_dim: int | None = None,
        attn_levels: Sequence[int] = (),
        mid_attention: bool = True,
        dropout: float = 0.0,
        norm_groups: int = 32,
        scaling_factor: float = 0.18215,
    ):
        super().__init__()
        if len(ch_mult) < 1:
            raise ValueError(f"ch_mult: expected at least one level, got {list(ch_mult)}")
        for name, value in (("in_channels", in_channels), ("ch", ch), ("num_res_blocks", num_res_blocks),
                            ("z_channels", z_channels), ("norm_groups", norm_groups)):
            check_int(name, value)
        bad = [lvl for lvl in attn_levels if not 0 <= lvl < len(ch_mult)]
        if bad:
            raise ValueError(f"attn_levels: expected level indices in [0, {len(ch_mult)}), got {list(attn_levels)}")
        if not scaling_factor > 0:
            raise ValueError(f"scaling_factor: expected > 0, got {scaling_factor}")
        out_channels = in_channels if out_channels is None else out_channels
        embed_dim = z_channels if embed_dim is None else embed_dim
        self.config = dict(
            in_channels=in_channels, out_channels=out_channels, ch=ch, ch_mult=list(ch_mult),
            num_res_blocks=num_res_blocks, z_channels=z_channels, embed_dim=embed_dim,
            attn_levels=list(attn_levels), mid_attention=mid_attention, dropout=dropout,
            norm_groups=norm_groups, scaling_factor=float(scaling_factor),
        )
        shared = dict(ch=ch, ch_mult=tuple(ch_mult), num_res_blocks=num_res_blocks, z_channels=z_channels,
                      attn_levels=tuple(attn_levels), mid_attention=mid_attention, dropout=dropout,
                      norm_groups=norm_groups)
        self.encoder = Encoder(in_channels=in_channels, **shared)
        self.decoder = Decoder(out_channels=out_channels, **shared)
        self.quant_conv = nn.Conv2d(2 * z_channels, 2 * embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)
        self.scaling_factor = float(scaling_factor)
        self.downsampling_factor = 2 ** (len(ch_mult) - 1)
        self.latent_channels = embed_dim
        self.in_channels = in_channels

    def _check_image(self, x: Tensor, name: str) -> None:
        f = self.downsampling_factor
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(
                f"{name}: expected (b, {self.in_channels}, h, w) with h and w divisible by {f}, "
                f"got {tuple(x.shape)}"
            )

    def encode(self, x: Tensor) -> DiagonalGaussian:
        """Posterior over unscaled latents.

        Args:
            x: images ``(b, c, h, w)`` in [-1, 1], ``h`` and ``w`` divisible by the downsampling factor.

        Returns:
            ``DiagonalGaussian`` over ``(b, embed_dim, h/f, w/f)``.
        """
        self._check_image(x, "x")
        return DiagonalGaussian(self.quant_conv(self.encoder(x)))

    def decode(self, z: Tensor) -> Tensor:
        """Unscaled latents ``(b, embed_dim, h', w')`` -> images ``(b, out_channels, h' f, w' f)``."""
        if z.ndim != 4 or z.shape[1] != self.latent_channels:
            raise ValueError(f"z: expected (b, {self.latent_channels}, h, w), got {tuple(z.shape)}")
        return self.decoder(self.post_quant_conv(z))

    def forward(
        self, x: Tensor, sample: bool = True, generator: torch.Generator | None = None
    ) -> tuple[Tensor, DiagonalGaussian]:
        """Reconstruct ``x (b, c, h, w)``; returns ``(reconstruction, posterior)``."""
        posterior = self.encode(x)
        z = posterior.sample(generator) if sample else posterior.mode()
        return self.decode(z), posterior

    def encode_video(
        self,
        x: Tensor,
        chunk_size: int = 16,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Encode a clip frame by frame, ``chunk_size`` frames at a time.

        Args:
            x: video ``(b, t, c, h, w)`` in [-1, 1].
            chunk_size: frames per encoder call (memory bound; the result does not depend on it).
            sample: draw from the posterior (noise drawn once for the whole clip) instead of its mode.
            generator: random generator for ``sample=True``.

        Returns:
            Scaled latents ``(b, t, embed_dim, h/f, w/f)`` (multiplied by ``scaling_factor``).
        """
        if x.ndim != 5:
            raise ValueError(f"x: expected a video (b, t, c, h, w), got shape {tuple(x.shape)}")
        _check_chunk(chunk_size)
        b, t, c, h, w = x.shape
        self._check_image(x[:1, 0], "x frames")
        frames = rearrange(x, "b t c h w -> (b t) c h w")
        f = self.downsampling_factor
        noise = None
        if sample:
            shape = (b * t, self.latent_channels, h // f, w // f)
            noise = torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype)
        out = []
        for start in range(0, b * t, chunk_size):
            post = self.encode(frames[start : start + chunk_size])
            z = post.mode() if noise is None else post.sample(noise=noise[start : start + chunk_size])
            out.append(z)
        z = torch.cat(out) * self.scaling_factor
        return rearrange(z, "(b t) c h w -> b t c h w", b=b, t=t)

    def decode_video(self, z: Tensor, chunk_size: int = 16) -> Tensor:
        """Decode scaled latents ``(b, t, embed_dim, h', w')`` -> video ``(b, t, c, h' f, w' f)``, in chunks."""
        if z.ndim != 5:
            raise ValueError(f"z: expected latents (b, t, c, h, w), got shape {tuple(z.shape)}")
        _check_chunk(chunk_size)
        b, t = z.shape[:2]
        frames = rearrange(z, "b t c h w -> (b t) c h w") / self.scaling_factor
        out = [self.decode(frames[s : s + chunk_size]) for s in range(0, b * t, chunk_size)]
        return rearrange(torch.cat(out), "(b t) c h w -> b t c h w", b=b, t=t)

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """``(embed_dim, h/f, w/f)`` for images of ``height x width`` (both divisible by ``f``)."""
        f = self.downsampling_factor
        if height % f or width % f:
            raise ValueError(f"height, width: expected multiples of {f}, got {height} x {width}")
        return self.latent_channels, height // f, width // f


def _check_chunk(chunk_size: int) -> None:
    check_int("chunk_size", chunk_size)


#: Metadata key of the autoencoder config (JSON) in files written by :func:`save_autoencoder`.
CONFIG_KEY = "vidiff_autoencoder_config"
#: Prefix of the autoencoder's weights in the Lightning checkpoints of ``vidiff.lit.autoencoder``.
LIT_PREFIX = "autoencoder."


def save_autoencoder(model: AutoencoderKL, path: str | os.PathLike) -> Path:
    """Write ``model``'s weights to a safetensors file with its config in the metadata (atomically).

    Returns:
        The path written.
    """
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with writing(path), atomic_path(path) as tmp:  # the umask's permissions, not mkstemp's 0600
        save_file(state, str(tmp), metadata={CONFIG_KEY: json.dumps(model.config)})
    return path


def load_autoencoder(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> AutoencoderKL:
    """Load a frozen (``requires_grad=False``, eval mode) vidiff autoencoder.

    Args:
        path: a ``.safetensors`` file from :func:`save_autoencoder`, or a Lightning ``.ckpt`` written by
            training ``vidiff.lit.autoencoder.AutoencoderModule`` (config under ``"autoencoder_config"``,
            weights under ``state_dict["autoencoder.*"]``).
        map_location: device for the weights.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no autoencoder file at {path}")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with reading(path), safe_open(str(path), framework="pt", device=str(map_location)) as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()} if CONFIG_KEY in meta else None
        if state is None:
            raise ValueError(f"path: {path} has no '{CONFIG_KEY}' metadata (not written by save_autoencoder)")
        config = json.loads(meta[CONFIG_KEY])
    else:
        ckpt = load_torch_file(path, map_location)
        if not isinstance(ckpt, dict) or "autoencoder_config" not in ckpt or "state_dict" not in ckpt:
            raise ValueError(
                f"path: {path} is not an autoencoder training checkpoint "
                f"(expected keys 'autoencoder_config' and 'state_dict', got {sorted(ckpt)[:8]})"
            )
        config = ckpt["autoencoder_config"]
        state = {k[len(LIT_PREFIX):]: v for k, v in ckpt["state_dict"].items() if k.startswith(LIT_PREFIX)}
    model = AutoencoderKL(**config)
    model.load_state_dict(state)
    model.requires_grad_(False)
    return model.eval().to(map_location)
