"""vidiff.nn.attention: backends agree with the reference, chunking is transparent, bad input is named."""

import sys

import pytest
import torch


from vidiff.nn.attention import attention, default_backend, xformers_available


def _qkv(b=3, heads=2, n=5, m=7, d=8, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(b, heads, n, d, generator=g, dtype=dtype)
    k = torch.randn(b, heads, m, d, generator=g, dtype=dtype)
    v = torch.randn(b, heads, m, d, generator=g, dtype=dtype)
    return q, k, v


def _closed_form(q, k, v, bias=None):
    logits = torch.einsum("bhnd,bhmd->bhnm", q, k) / q.shape[-1] ** 0.5
    if bias is not None:
        logits = logits + bias
    return torch.einsum("bhnm,bhmd->bhnd", logits.softmax(-1), v)


def _grads(backend, q, k, v, bias):
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v, bias)]
    out = attention(*leaves[:3], bias=leaves[3], backend=backend)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    return out.detach(), [t.grad for t in leaves]


def test_math_matches_closed_form():
    q, k, v = _qkv()
    bias = torch.randn(1, 2, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(attention(q, k, v, bias, backend="math"), _closed_form(q, k, v, bias))


@pytest.mark.parametrize("bias_shape", [(3, 2, 5, 7), (1, 2, 5, 7), (3, 1, 1, 7)])
def test_sdpa_equals_math_forward_and_gradients_with_bias(bias_shape):
    q, k, v = _qkv(dtype=torch.float32)
    bias = torch.randn(bias_shape)
    out_s, grads_s = _grads("sdpa", q, k, v, bias)
    out_m, grads_m = _grads("math", q, k, v, bias)
    torch.testing.assert_close(out_s, out_m, atol=1e-5, rtol=1e-4)
    for gs, gm in zip(grads_s, grads_m):
        torch.testing.assert_close(gs, gm, atol=1e-5, rtol=1e-4)


def test_sdpa_equals_math_with_masks():
    q, k, v = _qkv(dtype=torch.float32)
    keep = torch.rand(3, 1, 5, 7) > 0.4
    keep[..., 0] = True  # every query keeps at least one key
    float_mask = torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))
    ref = _closed_form(q.double(), k.double(), v.double(), float_mask.double()).float()
    for backend in ("sdpa", "math"):
        for mask in (keep, float_mask):
            torch.testing.assert_close(attention(q, k, v, mask, backend=backend), ref, atol=1e-5, rtol=1e-4)
    # masked keys get no gradient
    vv = v.clone().requires_grad_()
    attention(q, k, vv, keep, backend="sdpa").sum().backward()
    only_masked = (~keep).all(dim=2).squeeze(1)  # (b, m): keys masked for every query
    assert torch.all(vv.grad.abs().sum((1, 3))[only_masked] == 0)
    vm = v.clone().requires_grad_()
    attention(q, k, vm, float_mask, backend="math").sum().backward()
    torch.testing.assert_close(vv.grad, vm.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("backend", ["sdpa", "math"])
def test_chunked_equals_unchunked(backend):
    q, k, v = _qkv(b=7, dtype=torch.float32)
    for bias in (None, torch.randn(7, 2, 5, 7), torch.randn(1, 2, 5, 7)):
        full = attention(q, k, v, bias, backend=backend)
        for chunk in (1, 3, 7, 100):
            torch.testing.assert_close(attention(q, k, v, bias, backend=backend, chunk_size=chunk), full)
    # gradients flow through the concatenated chunks alike
    bias = torch.randn(7, 2, 5, 7)
    leaves = [t.clone().requires_grad_() for t in (q, k, v, bias)]
    attention(*leaves[:3], bias=leaves[3], backend=backend, chunk_size=2).square().sum().backward()
    ref = [t.clone().requires_grad_() for t in (q, k, v, bias)]
    attention(*ref[:3], bias=ref[3], backend=backend).square().sum().backward()
    for a, b in zip(leaves, ref):
        torch.testing.assert_close(a.grad, b.grad)


def test_auto_backend_on_cpu():
    assert default_backend("cpu") == "sdpa"
    assert default_backend("cpu", bias_requires_grad=True) == "math"
    q, k, v = _qkv(dtype=torch.float32)
    torch.testing.assert_close(attention(q, k, v), attention(q, k, v, backend="math"), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"q": torch.zeros(2, 5, 8)}, "q must be"),
        ({"k": torch.zeros(3, 2, 7, 4)}, "k and v must be"),
        ({"bias": torch.zeros(2, 2, 5, 7)}, "bias must broadcast"),
        ({"backend": "flash"}, "backend must be one of"),
        ({"backend": "xformers"}, "xformers"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    q, k, v = _qkv(dtype=torch.float32)
    args = {"q": q, "k": k, "v": v, **kwargs}
    if not (torch.cuda.is_available() and xformers_available()) or kwargs.get("backend") != "xformers":
        with pytest.raises(ValueError, match=match):
            attention(**args)


@pytest.mark.cuda
@pytest.mark.skipif(not (torch.cuda.is_available() and xformers_available()), reason="needs CUDA and xformers")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_xformers_equals_math(dtype):
    g = torch.Generator(device="cuda").manual_seed(0)
    shape = (70_000, 2, 6, 32)  # B * heads > 65,535: exercises the automatic chunking too
    q, k, v = (torch.randn(shape, generator=g, device="cuda", dtype=dtype) for _ in range(3))
    bias = torch.randn(70_000, 2, 6, 6, generator=g, device="cuda", dtype=dtype)
    ref = attention(q.float(), k.float(), v.float(), bias.float(), backend="math", chunk_size=10_000)
    out = attention(q, k, v, bias, backend="xformers")
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)
    leaves = [t.clone().requires_grad_() for t in (q[:64], k[:64], v[:64], bias[:64])]
    attention(*leaves[:3], bias=leaves[3], backend="xformers").float().sum().backward()
    ref_leaves = [t.float().clone().requires_grad_() for t in (q[:64], k[:64], v[:64], bias[:64])]
    attention(*ref_leaves[:3], bias=ref_leaves[3], backend="math").sum().backward()
    for a, b in zip(leaves, ref_leaves):
        torch.testing.assert_close(a.grad.float(), b.grad, atol=5e-2, rtol=5e-2)


def test_auto_falls_back_to_sdpa_where_xformers_has_no_kernel(monkeypatch):
    # A GPU machine where auto picks xformers, but its dispatcher has no kernel for these inputs (seen on an H200:
    # an xformers wheel built for another torch imports and raises NotImplementedError at the first call).
    att = sys.modules["vidiff.nn.attention"]

    calls = []

    def refuse(*args):
        calls.append(1)
        raise NotImplementedError("No operator found for `memory_efficient_attention_forward`")

    monkeypatch.setattr(att, "default_backend", lambda *a, **k: "xformers")
    monkeypatch.setitem(att._KERNELS, "xformers", refuse)
    monkeypatch.setattr(att, "_XFORMERS_REFUSED", set())
    q, k, v = _qkv(dtype=torch.float32)
    bias = torch.randn(1, q.shape[1], q.shape[2], k.shape[2])
    expected = attention(q, k, v, bias, backend="sdpa")
    for _ in range(2):  # the second call goes straight to SDPA
        torch.testing.assert_close(attention(q, k, v, bias), expected)
    assert len(calls) == 1


def test_an_xformers_build_without_kernels_is_named():
    att = sys.modules["vidiff.nn.attention"]

    class Broken:
        @staticmethod
        def memory_efficient_attention(q, k, v):
            raise NotImplementedError("No operator found for `memory_efficient_attention_forward` with inputs:\n ...")

    class Working:
        @staticmethod
        def memory_efficient_attention(q, k, v):
            return q

    assert att._xformers_problem(Broken, "cpu") == "No operator found for `memory_efficient_attention_forward` with inputs:"
    assert att._xformers_problem(Working, "cpu") is None
