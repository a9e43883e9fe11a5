"""``SpaceTimeUNet``: the factorised space-time U-Net of vidiff.

Per-frame 2-D ResBlocks and spatial transformers named as latent-diffusion's ``UNetModel`` (``time_embed``,
``input_blocks.N.M``, ``middle_block.N``, ``output_blocks.N.M``, ``out``), so a Stable Diffusion U-Net's state
dict loads by name, plus vidiff's additions under names SD never uses: ``<block>.temporal`` (attention across
frames with a relative frame-position bias) and ``observed_in`` (the observed-indicator input channel). With
temporal layers off (or ``t == 1``) and no ``observed_in`` it is exactly the image U-Net. See docs/unet.md.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import torch
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidiff.arguments import check_int
from vidiff.nn.attention import BACKENDS
from vidiff.nn.blocks import Downsample, ResBlock, Upsample, normalization, zero_module
from vidiff.nn.embeddings import relative_frame_features, timestep_embedding
from vidiff.nn.checks import check_inputs
from vidiff.nn.neighbours import nearest_observed, neighbour_channels
from vidiff.nn.transformer import AttentionOptions, SpatialTransformer, TemporalAttention

logger = logging.getLogger(__name__)

TEMPORAL_PREFIXES = ("temporal", "observed_in", "neighbours_in")


def is_temporal_name(name: str) -> bool:
    """True for parameter names of vidiff's video additions (absent from an image / Stable Diffusion U-Net)."""
    return any(part in TEMPORAL_PREFIXES for part in name.split("."))


@dataclasses.dataclass
class _FrameState:
    """What every block needs besides the features: frame count, relative positions, text context."""

    frames: int
    rel: torch.Tensor | None  # (b, t, t, 1) or None when temporal layers are inactive
    context: torch.Tensor | None  # (b, L, d)


class UNetBlock(nn.Module):
    """ldm's ``TimestepEmbedSequential``: layers named ``0, 1, ...`` plus an optional ``temporal`` layer.

    The temporal layer runs after the block's ResBlock / spatial transformer and before its resampling layer.
    """

    def __init__(self, *layers: nn.Module, temporal: TemporalAttention | None = None) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)
        self.n_layers = len(layers)
        self.temporal = temporal
        self.temporal_at = next(
            (i for i, layer in enumerate(layers) if isinstance(layer, (Downsample, Upsample))), len(layers)
        )

    def forward(self, h: torch.Tensor, emb: torch.Tensor, state: _FrameState) -> torch.Tensor:
        """``h``: ``(b t) c h w``; ``emb``: ``((b t), emb_dim)``. Returns the block's output features."""
        for i in range(self.n_layers + 1):
            if i == self.temporal_at and self.temporal is not None and state.rel is not None:
                h = self.temporal(h, state.frames, state.rel)
            if i == self.n_layers:
                break
            layer = self._modules[str(i)]
            if isinstance(layer, ResBlock):
                h = layer(h, emb)
            elif isinstance(layer, SpatialTransformer):
                h = layer(h, state.context)
            else:
                h = layer(h)
        return h


class SpaceTimeUNet(nn.Module):
    """Video U-Net with per-frame 2-D layers, temporal attention across frames and optional cross-attention.

    Args:
        in_channels: Channels of each input frame (3 for RGB, 4 for SD latents).
        out_channels: Channels of the prediction (default ``in_channels``).
        model_channels: Base width; level ``i`` has ``model_channels * channel_mult[i]`` channels.
        channel_mult: Width multiplier per resolution level (``len`` = number of levels).
        num_res_blocks: ResBlocks per level on the way down (``+1`` on the way up).
        attention_resolutions: Downsample factors (1, 2, 4, ...) that get a spatial transformer, as in ldm.
        num_heads: Attention heads (used when ``num_head_channels == -1``).
        num_head_channels: Width per head; if not -1, heads = channels // num_head_channels.
        transformer_depth: Transformer blocks per spatial transformer.
        context_dim: Width of the cross-attention context (text embeddings), or None for no cross-attention.
        dropout: Dropout probability in ResBlocks and transformers.
        use_scale_shift_norm: Adaptive group norm conditioning (video default); False as Stable Diffusion.
        temporal: Add temporal attention layers.
        temporal_attention_resolutions: Downsample factors with temporal attention (default: every level).
        spacetime_attention_resolutions: Those of them where the temporal layer attends jointly over all pixels of
            all frames (space-time attention) instead of across frames at each pixel; same parameters.
        use_linear_proj: Linear ``proj_in``/``proj_out`` in spatial transformers (Stable Diffusion 2).
        observed_channel: Add the observed-frame indicator as an input channel (``observed_in``, zero-init).
        nearest_observed: Give every frame its this many nearest observed frames as extra input channels
            (``neighbours_in``, zero-init; :mod:`vidiff.nn.neighbours`); 0: off.
        gradient_checkpointing: Recompute each block in the backward pass (training only).
        attention_backend: ``"auto"``, ``"xformers"``, ``"sdpa"`` or ``"math"`` (see ``vidiff.nn.attention``).
        attention_chunk_size: Largest attention batch per kernel call (None: automatic on CUDA).
        norm_groups: GroupNorm groups (32 as ldm; smaller for tiny models).
        channels_last: Keep parameters and activations in channels-last memory format.
        rel_pos_hidden: Hidden width of the relative frame-position MLPs.
        patch_size: Side p of the square pixel patches the net works on (space-to-depth): frames enter as
            ``(c p p, h / p, w / p)`` and the prediction leaves through the inverse (depth-to-space), so the first
            level runs at ``h / p`` (simple diffusion's and DiT's patching); 1: off, the image U-Net layout.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int | None = None,
        model_channels: int = 64,
        channel_mult: Sequence[int] = (1, 2, 4),
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (4,),
        num_heads: int = 4,
        num_head_channels: int = -1,
        transformer_depth: int = 1,
        context_dim: int | None = None,
        dropout: float = 0.0,
        use_scale_shift_norm: bool = True,
        temporal: bool = True,
        temporal_attention_resolutions: Sequence[int] | None = None,
        spacetime_attention_resolutions: Sequence[int] = (),
        use_linear_proj: bool = False,
        observed_channel: bool = True,
        nearest_observed: int = 0,
        gradient_checkpointing: bool = False,
        attention_backend: str = "auto",
        attention_chunk_size: int | None = None,
        norm_groups: int = 32,
        channels_last: bool = False,
        rel_pos_hidden: int = 32,
        patch_size: int = 1,
    ) -> None:
        super().__init__()
        self.config = {k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in locals().items()
                       if k not in ("self", "__class__")}
        if attention_backend not in BACKENDS:
            raise ValueError(f"attention_backend must be one of {list(BACKENDS)}, got {attention_backend!r}")
        if num_heads < 1 and num_head_channels == -1:
            raise ValueError(f"num_heads must be >= 1 when num_head_channels == -1, got {num_heads}")
        if not channel_mult:
            raise ValueError("channel_mult must name at least one level, got an empty sequence")
        self.patch_size = check_int("patch_size", patch_size, note=" (1 = off)")
        area = patch_size * patch_size
        self.in_channels, self.out_channels = in_channels, out_channels or in_channels
        self.model_channels, self.context_dim = model_channels, context_dim
        self.num_levels = len(channel_mult)
        self.temporal_enabled, self.gradient_checkpointing = temporal, gradient_checkpointing
        self.channels_last = channels_last
        attn_res = set(attention_resolutions)
        temporal_res = (
            {2**i for i in range(self.num_levels)}
            if temporal_attention_resolutions is None
            else set(temporal_attention_resolutions)
        )
        joint_res = set(spacetime_attention_resolutions)
        if not joint_res <= temporal_res or (joint_res and not temporal):
            raise ValueError(
                f"spacetime_attention_resolutions: expected a subset of the temporal attention resolutions "
                f"{sorted(temporal_res) if temporal else []}, got {sorted(joint_res)}"
            )

        def heads_for(ch: int) -> tuple[int, int]:
            if num_head_channels == -1:
                if ch % num_heads:
                    raise ValueError(f"num_heads={num_heads} must divide every level's channels; got {ch}")
                return num_heads, ch // num_heads
            if ch % num_head_channels:
                raise ValueError(f"num_head_channels={num_head_channels} must divide every level's channels; got {ch}")
            return ch // num_head_channels, num_head_channels

        def spatial(ch: int) -> SpatialTransformer:
            heads, dim_head = heads_for(ch)
            return SpatialTransformer(
                ch, heads, dim_head, transformer_depth, dropout, context_dim, use_linear_proj, norm_groups
            )

        def temporal_layer(ch: int, ds: int) -> TemporalAttention | None:
            if not temporal or ds not in temporal_res:
                return None
            heads, dim_head = heads_for(ch)
            return TemporalAttention(ch, heads, dim_head, rel_pos_hidden, joint=ds in joint_res)

        def res(ch: int, out: int) -> ResBlock:
            return ResBlock(ch, emb_dim, dropout, out, use_scale_shift_norm, norm_groups)

        emb_dim = model_channels * 4
        self.time_embed = nn.Sequential(
            nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.input_blocks = nn.ModuleList([UNetBlock(nn.Conv2d(in_channels * area, model_channels, 3, padding=1))])
        self.observed_in = (
            zero_module(nn.Conv2d(1, model_channels, 3, padding=1, bias=False)) if observed_channel else None
        )
        self.nearest_observed = check_int("nearest_observed", nearest_observed, 0)
        self.neighbours_in = (
            zero_module(
                nn.Conv2d(neighbour_channels(in_channels, nearest_observed) * area, model_channels, 3, padding=1)
            )
            if nearest_observed
            else None
        )
        skip_chans, ch, ds = [model_channels], model_channels, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [res(ch, mult * model_channels)]
                ch = mult * model_channels
                if ds in attn_res:
                    layers.append(spatial(ch))
                self.input_blocks.append(UNetBlock(*layers, temporal=temporal_layer(ch, ds)))
                skip_chans.append(ch)
            if level != self.num_levels - 1:
                self.input_blocks.append(UNetBlock(Downsample(ch)))
                skip_chans.append(ch)
                ds *= 2
        self.middle_block = UNetBlock(res(ch, ch), spatial(ch), res(ch, ch), temporal=temporal_layer(ch, ds))
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [res(ch + skip_chans.pop(), model_channels * mult)]
                ch = model_channels * mult
                if ds in attn_res:
                    layers.append(spatial(ch))
                block_temporal = temporal_layer(ch, ds)
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(UNetBlock(*layers, temporal=block_temporal))
        self.out = nn.Sequential(
            normalization(ch, norm_groups),
            nn.SiLU(),
            zero_module(nn.Conv2d(ch, self.out_channels * area, 3, padding=1)),
        )
        self.set_attention(attention_backend, attention_chunk_size)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def set_attention(self, backend: str | None = None, chunk_size: int | None = None) -> None:
        """Set the attention backend (``auto``/``xformers``/``sdpa``/``math``) and chunk size of every layer."""
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        for module in self.modules():
            if isinstance(module, AttentionOptions):
                module.backend, module.chunk_size = backend, chunk_size

    def temporal_parameters(self) -> list[nn.Parameter]:
        """Parameters of the video additions (temporal layers, ``observed_in``): the ones inflation creates."""
        return [p for n, p in self.named_parameters() if is_temporal_name(n)]

    def spatial_parameters(self) -> list[nn.Parameter]:
        """Parameters shared with the image U-Net (everything but :meth:`temporal_parameters`)."""
        return [p for n, p in self.named_parameters() if not is_temporal_name(n)]

    def freeze_spatial(self, frozen: bool = True) -> None:
        """Stop (or restart) gradients into the image U-Net's parameters: "train temporal layers only"."""
        for p in self.spatial_parameters():
            p.requires_grad_(not frozen)

    def _run(self, block: UNetBlock, h: torch.Tensor, emb: torch.Tensor, state: _FrameState) -> torch.Tensor:
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, h, emb, state, use_reentrant=False)
        return block(h, emb, state)

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        frame_idx: torch.Tensor | None = None,
        observed: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict (eps, x0 or v, as trained) for every frame.

        Args:
            x: ``(b, t, c, h, w)`` video (or ``(b, c, h, w)``, taken as ``t = 1``); observed frames clean.
            timesteps: ``(b,)`` diffusion step per video, or ``(b, t)`` one per frame (Diffusion Forcing), long or
                float (a 0-d tensor or number broadcasts).
            frame_idx: ``(b, t)`` long positions in the long video (default ``arange(t)``); only differences matter.
            observed: ``(b, t)`` bool, True for given frames (default all False); they get timestep 0.
            context: ``(b, L, context_dim)`` cross-attention context, or None (cross-attention is skipped).

        Returns:
            ``(b, t, out_channels, h, w)`` (``(b, out_channels, h, w)`` for 4-D input).

        Raises:
            ValueError: Shapes that do not match (the message names the argument, expected and given shape).
        """
        image_input = x.ndim == 4
        x, timesteps, frame_idx, observed = check_inputs(self, x, timesteps, frame_idx, observed, context)
        b, t, _, h, w = x.shape
        active = self.temporal_enabled and t > 1
        state = _FrameState(t, relative_frame_features(frame_idx) if active else None, context)

        per_frame = timesteps if timesteps.ndim == 2 else timesteps[:, None].expand(b, t)
        steps = torch.where(observed, torch.zeros_like(per_frame), per_frame)  # (b, t)
        param_dtype = self.time_embed[0].weight.dtype
        emb = self.time_embed(timestep_embedding(steps.flatten(), self.model_channels).to(param_dtype))

        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"x: frames of {h}x{w} pixels do not split into patches of patch_size={p}; "
                             f"use a frame size divisible by {p}")
        frames = rearrange(x, "b t c (h p1) (w p2) -> (b t) (c p1 p2) h w", p1=p, p2=p)
        h, w = h // p, w // p
        if self.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        hid = self.input_blocks[0](frames, emb, state)
        if self.observed_in is not None:
            indicator = observed.flatten().to(hid.dtype)[:, None, None, None].expand(-1, 1, h, w)
            hid = hid + self.observed_in(indicator)
        if self.neighbours_in is not None:
            near = rearrange(nearest_observed(x, frame_idx, observed, self.nearest_observed),
                             "b t c (h p1) (w p2) -> (b t) (c p1 p2) h w", p1=p, p2=p)
            if self.channels_last:
                near = near.contiguous(memory_format=torch.channels_last)
            hid = hid + self.neighbours_in(near.to(hid.dtype))
        skips = [hid]
        for block in self.input_blocks[1:]:
            hid = self._run(block, hid, emb, state)
            skips.append(hid)
        hid = self._run(self.middle_block, hid, emb, state)
        for block in self.output_blocks:
            hid = self._run(block, torch.cat([hid, skips.pop()], dim=1), emb, state)
        out = rearrange(self.out(hid), "(b t) (c p1 p2) h w -> b t c (h p1) (w p2)", b=b, p1=p, p2=p)
        return out[:, 0] if image_input else out
