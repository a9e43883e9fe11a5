"""Attention layers: ldm's ``SpatialTransformer`` (per frame) and vidiff's ``TemporalAttention`` (across frames).

Spatial names follow latent-diffusion's ``ldm/modules/attention.py`` (``norm``, ``proj_in``,
``transformer_blocks.K.{attn1,attn2,ff,norm1,norm2,norm3}``, ``proj_out``; ``to_q/to_k/to_v/to_out.0``) so that
Stable Diffusion weights load by name. Every attention call goes through :func:`vidiff.nn.attention.attention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from vidiff.nn.attention import attention
from vidiff.nn.blocks import LayerNorm32, normalization, zero_module
from vidiff.nn.embeddings import RelativePositionBias


class AttentionOptions:
    """Mixin holding the attention backend and chunk size; :meth:`SpaceTimeUNet.set_attention` sets them."""

    backend: str | None = None
    chunk_size: int | None = None

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None):
        return attention(q, k, v, bias=bias, backend=self.backend, chunk_size=self.chunk_size)


class CrossAttention(AttentionOptions, nn.Module):
    """Multi-head attention to ``context`` (self-attention when ``context`` is None): ldm's ``CrossAttention``.

    Args:
        query_dim: Token width of ``x``.
        context_dim: Token width of ``context`` (default ``query_dim``).
        heads: Number of heads.
        dim_head: Width per head.
        dropout: Dropout after the output projection.
    """

    def __init__(
        self, query_dim: int, context_dim: int | None = None, heads: int = 8, dim_head: int = 64, dropout: float = 0.0
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim or query_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim or query_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Attend.

        Args:
            x: ``(n, N, query_dim)`` tokens; ``n = b * t`` when frames are flattened into the batch.
            context: ``(b, L, context_dim)`` with ``n`` a multiple of ``b`` (the context of video ``i`` serves its
                ``n / b`` frames, projected once), or None for self-attention.

        Returns:
            ``(n, N, query_dim)``.
        """
        if context is None:  # one fused projection instead of three
            weight = torch.cat([self.to_q.weight, self.to_k.weight, self.to_v.weight])
            q, k, v = F.linear(x, weight).chunk(3, dim=-1)
        else:
            q = self.to_q(x)
            k, v = self.to_k(context), self.to_v(context)  # (b, L, inner): once per video, not per frame
            if k.shape[0] != x.shape[0]:
                k, v = (repeat(z, "b l c -> (b t) l c", t=x.shape[0] // k.shape[0]) for z in (k, v))
        q, k, v = (rearrange(z, "n l (heads d) -> n heads l d", heads=self.heads) for z in (q, k, v))
        out = self._attend(q, k, v)
        return self.to_out(rearrange(out, "n heads l d -> n l (heads d)"))


class GEGLU(nn.Module):
    """Gated GELU projection: ``proj`` to ``2 * dim_out`` then ``a * gelu(gate)``."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    """ldm's gated feed-forward: ``net`` = (GEGLU, Dropout, Linear), 4x hidden width."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Dropout(dropout), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    """Pre-norm transformer block: self-attention ``attn1``, cross-attention ``attn2``, feed-forward ``ff``.

    Without ``context_dim`` there is no ``attn2`` (ldm would make it a second self-attention; vidiff's
    unconditional models skip it). A model with ``attn2`` called with ``context=None`` skips it too: that is the
    "no text" path, distinct from passing a null-text embedding.
    """

    def __init__(
        self, dim: int, n_heads: int, d_head: int, dropout: float = 0.0, context_dim: int | None = None
    ) -> None:
        super().__init__()
        self.attn1 = CrossAttention(dim, heads=n_heads, dim_head=d_head, dropout=dropout)
        self.ff = FeedForward(dim, dropout=dropout)
        self.attn2 = (
            CrossAttention(dim, context_dim, heads=n_heads, dim_head=d_head, dropout=dropout)
            if context_dim is not None
            else None
        )
        self.norm1 = LayerNorm32(dim)
        self.norm2 = LayerNorm32(dim) if context_dim is not None else None
        self.norm3 = LayerNorm32(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(n, N, dim)``; ``context``: ``(b, L, context_dim)`` or None. Returns ``(n, N, dim)``."""
        x = x + self.attn1(self.norm1(x))
        if self.attn2 is not None and context is not None:
            x = x + self.attn2(self.norm2(x), context=context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """Transformer over the pixels of each frame (ldm's ``SpatialTransformer``); output projection zero-init.

    Args:
        in_channels: Channels of the feature map.
        n_heads: Heads.
        d_head: Width per head.
        depth: Number of transformer blocks.
        dropout: Dropout probability.
        context_dim: Width of the cross-attention context, or None for no cross-attention.
        use_linear: Linear ``proj_in``/``proj_out`` on tokens (Stable Diffusion 2) instead of 1x1 convolutions.
        norm_groups: GroupNorm groups of ``norm``.
    """

    def __init__(
        self,
        in_channels: int,
        n_heads: int,
        d_head: int,
        depth: int = 1,
        dropout: float = 0.0,
        context_dim: int | None = None,
        use_linear: bool = False,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        inner = n_heads * d_head
        self.use_linear = use_linear
        self.norm = normalization(in_channels, norm_groups, eps=1e-6)
        self.proj_in = nn.Linear(in_channels, inner) if use_linear else nn.Conv2d(in_channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner, n_heads, d_head, dropout, context_dim) for _ in range(depth)]
        )
        self.proj_out = zero_module(nn.Linear(inner, in_channels) if use_linear else nn.Conv2d(inner, in_channels, 1))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(n, c, h, w)`` frames; ``context``: ``(b, L, d)`` or None. Returns ``(n, c, h, w)``."""
        _, _, h, w = x.shape
        z = self.norm(x)
        if not self.use_linear:
            z = self.proj_in(z)
        z = rearrange(z, "n c h w -> n (h w) c")
        if self.use_linear:
            z = self.proj_in(z)
        for block in self.transformer_blocks:
            z = block(z, context)
        if self.use_linear:
            z = self.proj_out(z)
        z = rearrange(z, "n (h w) c -> n c h w", h=h, w=w)
        if not self.use_linear:
            z = self.proj_out(z)
        return x + z


class TemporalAttention(AttentionOptions, nn.Module):
    """Self-attention across the frames at each pixel, with a relative frame-position bias (vidiff's addition).

    ``norm`` (LayerNorm over channels) -> fused ``to_qkv`` -> attention over ``t`` with the per-head bias of
    :class:`~vidiff.nn.embeddings.RelativePositionBias` (``rel_pos``) added to the logits -> ``to_out``, zero-init,
    so a freshly inserted layer is the identity. No positional signal comes from the array order, so the layer is
    equivariant to permuting frames together with their ``frame_idx``.

    ``joint=True`` makes it space-time attention: every pixel of every frame attends to every pixel of every frame
    (``t h w`` tokens), with the same relative frame-position bias between any two frames. Per-pixel attention can
    only copy what stays in place; an object that moves between far-apart frames is found by content only in joint
    attention (docs/benchmarks.md, "Learning to use the context"). The parameters are the same in both modes.

    Args:
        channels: Channels of the feature map.
        heads: Heads.
        dim_head: Width per head.
        rel_pos_hidden: Hidden width of the relative-position MLP.
        joint: Attend over all pixels of all frames instead of across frames at each pixel.
    """

    def __init__(
        self, channels: int, heads: int, dim_head: int, rel_pos_hidden: int = 32, joint: bool = False
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.joint = heads, joint
        self.norm = LayerNorm32(channels)
        self.to_qkv = nn.Linear(channels, 3 * inner, bias=False)
        self.rel_pos = RelativePositionBias(heads, rel_pos_hidden)
        self.to_out = zero_module(nn.Linear(inner, channels))

    def forward(self, x: torch.Tensor, frames: int, rel: torch.Tensor) -> torch.Tensor:
        """Attend across frames.

        Args:
            x: ``(b t) c h w`` frames of ``b`` videos.
            frames: ``t``.
            rel: ``(b, t, t, 1)`` relative frame features (:func:`~vidiff.nn.embeddings.relative_frame_features`).

        Returns:
            ``(b t) c h w``.
        """
        _, _, h, w = x.shape
        if self.joint:
            tokens, pixels = "(b t) c h w -> b (t h w) c", "b (t h w) c -> (b t) c h w"
            # every token of frame i against every token of frame j: the frame bias, repeated over the pixels
            bias = repeat(self.rel_pos(rel), "b heads i j -> b heads (i s) (j r)", s=h * w, r=h * w)
        else:
            tokens, pixels = "(b t) c h w -> (b h w) t c", "(b h w) t c -> (b t) c h w"
            bias = repeat(self.rel_pos(rel), "b heads i j -> (b s) heads i j", s=h * w)  # (b h w) heads t t
        z = rearrange(x, tokens, t=frames)
        q, k, v = rearrange(
            self.to_qkv(self.norm(z)), "n l (three heads d) -> three n heads l d", three=3, heads=self.heads
        )
        out = self._attend(q, k, v, bias.to(q.dtype))
        out = self.to_out(rearrange(out, "n heads l d -> n l (heads d)"))
        return x + rearrange(out, pixels, t=frames, h=h, w=w)
