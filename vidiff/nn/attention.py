"""One attention function with interchangeable backends.

All attention in vidiff (spatial, temporal with relative-position bias, cross-attention to text) goes through
:func:`attention`. Layout: ``q`` is ``(B, heads, N, d)``, ``k`` and ``v`` are ``(B, heads, M, d)``; the output is
``(B, heads, N, d)``. ``bias`` is added to the logits ``q k^T / sqrt(d)`` and broadcasts to ``(B, heads, N, M)``
(its first two axes may be 1). A float bias is additive (``-inf`` masks a key); a bool bias is a mask in which
True means "may attend". A query row whose keys are all masked gives NaN in every backend.

Backends:
    ``xformers``: ``xformers.ops.memory_efficient_attention`` (CUDA tensors, xformers installed); the bias is
        passed as ``attn_bias`` (materialised and padded to a multiple of 8 keys as the kernel requires).
    ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` with a float ``attn_mask``.
    ``math``: the reference, ``softmax(q k^T / sqrt(d) + bias) v`` with the softmax in float32 (or wider).

``backend=None`` means :func:`default_backend`: xformers for CUDA tensors when its kernels run, else sdpa (except
a CPU call whose bias requires grad: math, which is faster than SDPA's own fallback there). Inputs for which
xformers' dispatcher has no kernel (fp32 with a small head dim, on some builds) then go to sdpa.

CUDA attention kernels fail with "invalid configuration argument" once ``B * heads`` reaches 65,536 (temporal
attention runs over ``b * h * w`` short sequences: 16 videos at 64x64 already reach it). Such batches are split
along ``B`` into chunks of ``chunk_size`` rows (default :data:`CUDA_MAX_BATCH` // heads) and the results
concatenated; ``chunk_size`` can force chunking anywhere (tests use it on CPU).
"""

from __future__ import annotations

import functools
import logging
import math

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "xformers", "sdpa", "math")
# CUDA grids allow at most 65,535 blocks along y/z: xformers and SDPA's kernels put B * heads there.
CUDA_MAX_BATCH = 65_535


@functools.lru_cache(maxsize=1)
def xformers_available() -> bool:
    """True when ``xformers.ops`` imports and, where CUDA is present, its kernels run.

    xformers is optional (``pip install vidiff[gpu]``). A build made for another torch or CUDA imports but has no
    kernels ("xFormers can't load C++/CUDA extensions"): it counts as absent, with one warning, so ``auto`` uses SDPA.
    """
    try:
        import xformers.ops as xops
    except Exception:  # ImportError, or a broken build raising at import time
        return False
    problem = _xformers_problem(xops, "cuda") if torch.cuda.is_available() else None
    if problem:
        logger.warning("xformers is installed but its kernels do not run here (%s); attention uses torch SDPA. "
                       "Install the xformers build made for this torch and CUDA to use it.", problem)
    return problem is None


def _xformers_problem(xops, device: str) -> str | None:
    """None when one small half-precision xformers attention runs on ``device``, else the error's first line."""
    try:
        q = torch.zeros(1, 8, 1, 32, device=device, dtype=torch.float16)
        xops.memory_efficient_attention(q, q, q)
    except Exception as e:  # NotImplementedError: no kernel; RuntimeError: a kernel for another architecture
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return None


# (dtype, head dim, value dim, biased) that xformers' dispatcher has refused: ``auto`` sends them to SDPA.
_XFORMERS_REFUSED: set[tuple] = set()


def default_backend(device: torch.device | str, bias_requires_grad: bool = False) -> str:
    """The backend ``auto`` picks for tensors on ``device``: xformers on CUDA when installed, else sdpa.

    One exception: on CPU a bias that requires grad (the learned relative-position bias) makes torch's SDPA
    leave its fused kernel for a slower reference path, so ``math`` is picked there.
    """
    if torch.device(device).type == "cuda" and xformers_available():
        return "xformers"
    if torch.device(device).type == "cpu" and bias_requires_grad:
        return "math"
    return "sdpa"


def resolve_backend(
    backend: str | None, device: torch.device | str, bias_requires_grad: bool = False
) -> str:
    """Validate a backend name and resolve ``None``/``"auto"`` for ``device``.

    Raises:
        ValueError: ``backend`` is not one of :data:`BACKENDS`, or xformers is asked for without CUDA/xformers.
    """
    if backend is None or backend == "auto":
        return default_backend(device, bias_requires_grad)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "xformers" and (torch.device(device).type != "cuda" or not xformers_available()):
        raise ValueError(
            f"backend='xformers' needs CUDA tensors and the xformers package; got device {torch.device(device)}"
            f" and xformers {'usable' if xformers_available() else 'not installed, or without kernels for this torch'}"
        )
    return backend


def _check_shapes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> None:
    if q.ndim != 4:
        raise ValueError(f"q must be (B, heads, N, d), got shape {tuple(q.shape)}")
    if k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"k and v must be (B, heads, M, d), got {tuple(k.shape)} and {tuple(v.shape)}")
    b, h, _, d = q.shape
    if k.shape[:2] != (b, h) or k.shape[3] != d or v.shape[:3] != k.shape[:3]:
        raise ValueError(
            f"k and v must be ({b}, {h}, M, {d}) and ({b}, {h}, M, dv) to match q {tuple(q.shape)}, got k"
            f" {tuple(k.shape)} and v {tuple(v.shape)}"
        )
    if bias is not None:
        expected = (b, h, q.shape[2], k.shape[2])
        ok = bias.ndim == 4 and all(s in (1, e) for s, e in zip(bias.shape, expected))
        if not ok:
            raise ValueError(f"bias must broadcast to (B, heads, N, M) = {expected}, got {tuple(bias.shape)}")


def _float_bias(bias: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A bool mask (True = attend) becomes an additive float bias of ``dtype``; a float bias is cast."""
    if bias is None:
        return None
    if bias.dtype == torch.bool:
        return torch.zeros(bias.shape, dtype=dtype, device=bias.device).masked_fill(~bias, float("-inf"))
    return bias.to(dtype)


def _math(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    scale = 1.0 / math.sqrt(q.shape[-1])
    acc = torch.promote_types(q.dtype, torch.float32)  # softmax in float32 at least (bf16/fp16 inputs)
    logits = torch.matmul(q.to(acc), k.to(acc).transpose(-1, -2)) * scale  # (B, heads, N, M)
    if bias is not None:
        logits = logits + _float_bias(bias, acc)
    weights = logits.softmax(dim=-1)
    return torch.matmul(weights.to(v.dtype), v)


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=_float_bias(bias, q.dtype))


def _xformers(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    import xformers.ops as xops

    b, h, n, _ = q.shape
    m = k.shape[2]
    attn_bias = None
    if bias is not None:
        # xformers wants a dense (B, heads, N, M) bias whose last-dim storage is a multiple of 8: pad, then slice.
        pad = (-m) % 8
        full = _float_bias(bias, q.dtype).expand(b, h, n, m)
        attn_bias = F.pad(full, (0, pad))[..., :m] if pad else full.contiguous()
    # xformers layout is (B, N, heads, d).
    out = xops.memory_efficient_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=attn_bias
    )
    return out.transpose(1, 2)


_KERNELS = {"math": _math, "sdpa": _sdpa, "xformers": _xformers}


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None = None,
    backend: str | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention ``softmax(q k^T / sqrt(d) + bias) v``.

    Args:
        q: Queries, ``(B, heads, N, d)``.
        k: Keys, ``(B, heads, M, d)``.
        v: Values, ``(B, heads, M, dv)``.
        bias: Optional float bias added to the logits, or bool mask (True = attend); broadcastable to
            ``(B, heads, N, M)`` with leading axes of size 1 or full size.
        backend: ``"xformers"``, ``"sdpa"``, ``"math"``, or ``None``/``"auto"`` for :func:`default_backend`.
        chunk_size: Largest number of ``B`` rows per kernel call. ``None``: on CUDA,
            ``CUDA_MAX_BATCH // heads`` (no chunking elsewhere).

    Returns:
        ``(B, heads, N, dv)`` in the dtype of ``v``.

    Raises:
        ValueError: Bad shapes, unknown backend, or ``chunk_size < 1``.
    """
    _check_shapes(q, k, v, bias)
    name = resolve_backend(backend, q.device, bias is not None and bias.requires_grad)
    b, heads = q.shape[:2]
    if chunk_size is None:
        chunk_size = max(1, CUDA_MAX_BATCH // heads) if q.device.type == "cuda" else b
    elif chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if name != "xformers" or backend not in (None, "auto"):
        return _chunked(_KERNELS[name], q, k, v, bias, chunk_size)
    # auto picked xformers: inputs its dispatcher has no kernel for (fp32 with a small head dim on some builds)
    # go to SDPA instead of failing; an explicit backend="xformers" still raises.
    key = (q.dtype, q.shape[-1], v.shape[-1], bias is not None)
    if key not in _XFORMERS_REFUSED:
        try:
            return _chunked(_KERNELS["xformers"], q, k, v, bias, chunk_size)
        except NotImplementedError:
            _XFORMERS_REFUSED.add(key)
            logger.info("xformers has no kernel for %s, head dim %d%s: using SDPA for these inputs",
                        q.dtype, q.shape[-1], " with a bias" if bias is not None else "")
    return _chunked(_sdpa, q, k, v, bias, chunk_size)


def _chunked(kernel, q, k, v, bias, chunk_size: int) -> torch.Tensor:
    """``kernel`` on at most ``chunk_size`` rows of ``B`` at a time, results concatenated."""
    b = q.shape[0]
    if b <= chunk_size:
        return kernel(q, k, v, bias)
    outs = []
    for start in range(0, b, chunk_size):
        stop = min(start + chunk_size, b)
        part = None
        if bias is not None:
            part = bias if bias.shape[0] == 1 else bias[start:stop]
        outs.append(kernel(q[start:stop], k[start:stop], v[start:stop], part))
    return torch.cat(outs, dim=0)
