"""Noise schedules of the discrete-time Gaussian diffusion process (DDPM, Ho et al. 2020).

Notation follows DDPM: ``betas[t]`` is beta_t, ``alphas[t] = 1 - beta_t`` and ``alphas_cumprod[t]`` is
alpha-bar_t, so the forward process is ``q(x_t | x_0) = N(sqrt(alpha-bar_t) x_0, (1 - alpha-bar_t) I)``.
Timesteps are 0-based: ``t = 0`` is the least noisy step and ``t = T - 1`` the noisiest.

The schedule holds no weights and is not an ``nn.Module`` (diffusers' scheduler contract): every table is
computed in float64 and kept twice, as a public float32 tensor (safe to combine with float32 activations without
promoting them) and as a private float64 copy that samplers use when they ask for a coefficient at a Python ``int``
timestep (a plain float, so the activations keep their own dtype and device).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch

from vidiff.diffusion.utils import append_dims, check_choice

SCHEDULE_KINDS = ("linear", "scaled_linear", "cosine")
PREDICTIONS = ("eps", "x0", "v")

# (beta_start, beta_end) defaults: DDPM (Ho et al. 2020) and Stable Diffusion (latent-diffusion's configs).
_BETA_DEFAULTS = {"linear": (1e-4, 0.02), "scaled_linear": (0.00085, 0.012)}

_TABLES = (
    "betas",
    "alphas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
    "snrs",
)

Timestep = int | torch.Tensor


def make_betas(
    kind: str,
    num_timesteps: int,
    beta_start: float | None = None,
    beta_end: float | None = None,
    cosine_s: float = 0.008,
    max_beta: float = 0.999,
) -> torch.Tensor:
    """Returns the float64 betas ``(num_timesteps,)`` of a named schedule.

    linear: DDPM's ``linspace(beta_start, beta_end)`` (default 1e-4 .. 0.02).
    scaled_linear: Stable Diffusion's ``linspace(sqrt(beta_start), sqrt(beta_end)) ** 2`` (default 0.00085 .. 0.012).
    cosine: Nichol & Dhariwal 2021, eq. 17: ``alpha-bar(t) = f(t) / f(0)``, ``f(t) = cos((t/T + s) / (1 + s) * pi/2)^2``
    and ``beta_t = min(1 - alpha-bar(t + 1) / alpha-bar(t), max_beta)``.
    """
    check_choice("kind", kind, SCHEDULE_KINDS)
    if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, int) or num_timesteps < 2:
        raise ValueError(f"num_timesteps must be an int >= 2; got {num_timesteps!r}")
    if kind == "cosine":
        if beta_start is not None or beta_end is not None:
            raise ValueError(
                f"beta_start/beta_end do not apply to kind='cosine' (it uses cosine_s and max_beta); "
                f"got beta_start={beta_start!r}, beta_end={beta_end!r}"
            )

        def f(i: int) -> float:
            return math.cos((i / num_timesteps + cosine_s) / (1 + cosine_s) * math.pi / 2) ** 2

        betas = [min(1 - f(i + 1) / f(i), max_beta) for i in range(num_timesteps)]
        return torch.tensor(betas, dtype=torch.float64)
    start, end = _BETA_DEFAULTS[kind]
    start = start if beta_start is None else beta_start
    end = end if beta_end is None else beta_end
    if not 0 < start <= end < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1; got beta_start={start!r}, beta_end={end!r}")
    if kind == "linear":
        return torch.linspace(start, end, num_timesteps, dtype=torch.float64)
    return torch.linspace(start**0.5, end**0.5, num_timesteps, dtype=torch.float64) ** 2


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Rescales betas so the last step has zero SNR (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample
    Steps are Flawed", Algorithm 1): shift and scale sqrt(alpha-bar) so that its last value is 0 and its first
    value is unchanged.

    Args:
        betas: ``(T,)`` float64.

    Returns:
        ``(T,)`` float64 betas with ``betas[-1] == 1`` (alpha-bar_{T-1} == 0).
    """
    sqrt_ab = torch.cumprod(1 - betas, dim=0).sqrt()
    first, last = sqrt_ab[0].clone(), sqrt_ab[-1].clone()
    # 1. shift so that the last value is 0, 2. scale so that the first value is kept
    sqrt_ab = (sqrt_ab - last) * first / (first - last)
    ab = sqrt_ab**2
    alphas = torch.cat([ab[:1], ab[1:] / ab[:-1]])  # 3. back from alpha-bar to alphas
    return 1 - alphas


class NoiseSchedule:
    """A discrete noise schedule with the precomputed tables of DDPM, plus the forward process and conversions
    between the eps, x0 and v parameterisations.

    Every method accepts a timestep either as a Python ``int`` (one timestep for the whole batch; coefficients are
    float64-exact Python floats) or as a LongTensor ``(b,)`` (one per sample; coefficients come from the float32
    tables, are moved to the input's device and dtype and are broadcast over any rank: images ``(b, c, h, w)``,
    videos ``(b, t, c, h, w)``).

    With ``zero_terminal_snr=True``, ``alphas_cumprod[-1] == 0``: ``x_{T-1}`` is pure noise, so an eps prediction
    says nothing about x0 there (``predict_x0`` returns non-finite values at that step and :func:`vidiff.diffusion.sample`
    refuses eps-prediction runs that start there). Use ``prediction="v"`` or ``"x0"`` with such schedules, as Lin et al.
    recommend.

    Args:
        kind: ``"linear"``, ``"scaled_linear"`` or ``"cosine"`` (see :func:`make_betas`).
        num_timesteps: T, the number of training timesteps.
        beta_start: First beta of the (scaled) linear schedules; ``None`` for the kind's default.
        beta_end: Last beta of the (scaled) linear schedules; ``None`` for the kind's default.
        zero_terminal_snr: Rescale to zero terminal SNR (:func:`rescale_zero_terminal_snr`).
        cosine_s: Offset s of the cosine schedule.
        max_beta: Clip of the cosine schedule's betas.

    Attributes:
        betas, alphas, alphas_cumprod, alphas_cumprod_prev, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod,
        sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod, posterior_variance, posterior_log_variance_clipped,
        posterior_mean_coef1, posterior_mean_coef2, snrs: float32 tensors ``(T,)``. The posterior
        ``q(x_{t-1} | x_t, x_0) = N(coef1 * x_0 + coef2 * x_t, posterior_variance)`` (DDPM eq. 6-7);
        the clipped log variance repeats the value of t = 1 at t = 0 (where the variance is 0), as improved-diffusion.
        alphas_cumprod_f64: float64 copy of ``alphas_cumprod``.
    """

    def __init__(
        self,
        kind: str = "linear",
        num_timesteps: int = 1000,
        beta_start: float | None = None,
        beta_end: float | None = None,
        zero_terminal_snr: bool = False,
        cosine_s: float = 0.008,
        max_beta: float = 0.999,
    ) -> None:
        betas = make_betas(kind, num_timesteps, beta_start, beta_end, cosine_s, max_beta)
        if zero_terminal_snr:
            betas = rescale_zero_terminal_snr(betas)
        self.kind = kind
        self.zero_terminal_snr = zero_terminal_snr
        self._set_tables(betas)

    @classmethod
    def from_betas(cls, betas: torch.Tensor | Sequence[float], kind: str = "custom") -> NoiseSchedule:
        """Builds a schedule from explicit betas ``(T,)`` (computed in float64), e.g. a respaced one."""
        betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if betas.numel() < 1 or not bool(((betas > 0) & (betas <= 1)).all()):
            raise ValueError(
                f"betas must be a non-empty sequence of values in (0, 1]; got {betas.tolist()[:8]}..."
            )
        self = cls.__new__(cls)
        self.kind = kind
        self.zero_terminal_snr = bool(betas[-1] == 1)
        self._set_tables(betas)
        return self

    def respace(self, timesteps: Sequence[int]) -> NoiseSchedule:
        """The schedule restricted to a subset of timesteps, with betas recomputed so that its alpha-bars are the
        original ones at those timesteps (improved-diffusion's ``SpacedDiffusion``, Nichol & Dhariwal 2021 sec. 4).

        Args:
            timesteps: Distinct original timesteps in any order.

        Returns:
            A schedule of ``len(timesteps)`` steps whose step ``i`` is the i-th smallest original timestep.
        """
        used = sorted({int(t) for t in timesteps})
        if not used or used[0] < 0 or used[-1] >= self.num_timesteps:
            raise ValueError(f"timesteps must lie in [0, {self.num_timesteps - 1}]; got {list(timesteps)}")
        ab = self.alphas_cumprod_f64[used]
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
        return NoiseSchedule.from_betas(1 - ab / ab_prev, kind=f"{self.kind}[respaced]")

    def _set_tables(self, betas: torch.Tensor) -> None:
        alphas = 1 - betas
        ab = torch.cumprod(alphas, dim=0)
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
        post_var = betas * (1 - ab_prev) / (1 - ab)
        clipped = post_var.clone()
        if len(clipped) > 1:
            clipped[0] = post_var[1]
        with torch.no_grad():
            tables = {
                "betas": betas,
                "alphas": alphas,
                "alphas_cumprod": ab,
                "alphas_cumprod_prev": ab_prev,
                "sqrt_alphas_cumprod": ab.sqrt(),
                "sqrt_one_minus_alphas_cumprod": (1 - ab).sqrt(),
                "sqrt_recip_alphas_cumprod": ab.rsqrt(),  # inf where alpha-bar == 0 (zero terminal SNR)
                "sqrt_recipm1_alphas_cumprod": (1 / ab - 1).sqrt(),
                "posterior_variance": post_var,
                "posterior_log_variance_clipped": clipped.clamp_min(1e-20).log(),
                "posterior_mean_coef1": betas * ab_prev.sqrt() / (1 - ab),
                "posterior_mean_coef2": (1 - ab_prev) * alphas.sqrt() / (1 - ab),
                "snrs": ab / (1 - ab),
            }
        self._f64 = tables
        self.alphas_cumprod_f64 = ab
        for name in _TABLES:
            setattr(self, name, tables[name].float())

    @property
    def num_timesteps(self) -> int:
        """T, the number of timesteps."""
        return len(self.betas)

    @property
    def device(self) -> torch.device:
        """Device of the float32 tables."""
        return self.betas.device

    def to(self, device: torch.device | str) -> NoiseSchedule:
        """Returns a new schedule whose float32 tables live on ``device`` (the float64 copies stay on the CPU)."""
        other = copy.copy(self)
        for name in _TABLES:
            setattr(other, name, getattr(self, name).to(device))
        return other

    def __repr__(self) -> str:
        return f"NoiseSchedule(kind={self.kind!r}, num_timesteps={self.num_timesteps}, zero_terminal_snr={self.zero_terminal_snr})"

    # ---------------------------------------------------------------- lookup
    def at(self, name: str, t: Timestep, x: torch.Tensor) -> float | torch.Tensor:
        """Table ``name`` at timestep(s) ``t``, ready to multiply with ``x``.

        Args:
            name: One of the table names (e.g. ``"sqrt_alphas_cumprod"``).
            t: An ``int`` (returns a float64-exact Python float) or a LongTensor ``()``, ``(b,)`` with
                ``b == x.shape[0]``, or any leading shape of ``x`` such as ``(b, t)`` for per-frame timesteps of a
                video (returns a tensor on x's device/dtype, broadcastable to x).
            x: The tensor the coefficient will multiply.
        """
        check_choice("name", name, _TABLES)
        if not isinstance(t, torch.Tensor):
            i = int(t)
            if not 0 <= i < self.num_timesteps:
                raise ValueError(f"t must lie in [0, {self.num_timesteps - 1}]; got {i}")
            return float(self._f64[name][i])
        if t.ndim >= 1 and x.ndim >= 1 and tuple(t.shape) != tuple(x.shape[: t.ndim]):
            raise ValueError(
                f"t must be an int or a tensor of shape () or ({x.shape[0]},), or a leading shape of x "
                f"{tuple(x.shape)} such as {tuple(x.shape[:2])}; got shape {tuple(t.shape)}"
            )
        out = getattr(self, name).to(x.device)[t.to(x.device).long()].to(x.dtype)
        return append_dims(out, x.ndim) if out.ndim else out

    def snr(self, t: Timestep) -> float | torch.Tensor:
        """Signal-to-noise ratio ``alpha-bar_t / (1 - alpha-bar_t)``; float for an int t, float32 tensor like t otherwise."""
        if not isinstance(t, torch.Tensor):
            return self.at("snrs", t, torch.empty(0))
        return self.snrs.to(t.device)[t.long()]

    # ---------------------------------------------------------------- forward process
    def q_sample(self, x0: torch.Tensor, t: Timestep, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Samples ``x_t ~ q(x_t | x_0) = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps`` (DDPM eq. 4).

        Args:
            x0: Clean data ``(b, ...)``, any rank.
            t: int or LongTensor ``(b,)`` (or ``(b, t)``: one timestep per video frame).
            noise: eps, same shape as ``x0``; ``None`` draws it with ``torch.randn_like``.
        """
        if noise is None:
            noise = torch.randn_like(x0)
        elif noise.shape != x0.shape:
            raise ValueError(
                f"noise must have the shape of x0: expected {tuple(x0.shape)}, got {tuple(noise.shape)}"
            )
        return (
            self.at("sqrt_alphas_cumprod", t, x0) * x0
            + self.at("sqrt_one_minus_alphas_cumprod", t, x0) * noise
        )

    def q_posterior(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: Timestep
    ) -> tuple[torch.Tensor, float | torch.Tensor, float | torch.Tensor]:
        """Mean, variance and clipped log variance of ``q(x_{t-1} | x_t, x_0)`` (DDPM eq. 6-7)."""
        mean = self.at("posterior_mean_coef1", t, x_t) * x0 + self.at("posterior_mean_coef2", t, x_t) * x_t
        return mean, self.at("posterior_variance", t, x_t), self.at("posterior_log_variance_clipped", t, x_t)

    # ---------------------------------------------------------------- conversions
    def predict_x0(self, x_t: torch.Tensor, t: Timestep, eps: torch.Tensor) -> torch.Tensor:
        """``x_0 = (x_t - sqrt(1 - alpha-bar_t) eps) / sqrt(alpha-bar_t)``; non-finite where alpha-bar_t == 0."""
        return (
            self.at("sqrt_recip_alphas_cumprod", t, x_t) * x_t
            - self.at("sqrt_recipm1_alphas_cumprod", t, x_t) * eps
        )

    def predict_eps(self, x_t: torch.Tensor, t: Timestep, x0: torch.Tensor) -> torch.Tensor:
        """``eps = (x_t - sqrt(alpha-bar_t) x_0) / sqrt(1 - alpha-bar_t)``; finite for every t (alpha-bar_t < 1)."""
        num = x_t - self.at("sqrt_alphas_cumprod", t, x_t) * x0
        return num / self.at("sqrt_one_minus_alphas_cumprod", t, x_t)

    def get_v(self, x0: torch.Tensor, noise: torch.Tensor, t: Timestep) -> torch.Tensor:
        """Velocity ``v = sqrt(alpha-bar_t) eps - sqrt(1 - alpha-bar_t) x_0`` (Salimans & Ho 2022, sec. 4)."""
        return (
            self.at("sqrt_alphas_cumprod", t, x0) * noise
            - self.at("sqrt_one_minus_alphas_cumprod", t, x0) * x0
        )

    def get_target(
        self, x0: torch.Tensor, noise: torch.Tensor, t: Timestep, prediction: str = "eps"
    ) -> torch.Tensor:
        """The regression target of a model trained with ``prediction`` in ``"eps"``, ``"x0"``, ``"v"``."""
        check_choice("prediction", prediction, PREDICTIONS)
        if prediction == "eps":
            return noise
        if prediction == "x0":
            return x0
        return self.get_v(x0, noise, t)

    def to_x0_eps(
        self, pred: torch.Tensor, x_t: torch.Tensor, t: Timestep, prediction: str = "eps"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Turns a model output in parameterisation ``prediction`` into ``(x0_hat, eps_hat)``.

        eps: ``x0 = predict_x0(x_t, eps)``. x0: ``eps = predict_eps(x_t, x0)``.
        v: ``x0 = sqrt(a) x_t - sqrt(1 - a) v`` and ``eps = sqrt(1 - a) x_t + sqrt(a) v`` (a = alpha-bar_t).
        """
        check_choice("prediction", prediction, PREDICTIONS)
        if pred.shape != x_t.shape:
            raise ValueError(
                f"pred must have the shape of x_t: expected {tuple(x_t.shape)}, got {tuple(pred.shape)}"
            )
        if prediction == "eps":
            return self.predict_x0(x_t, t, pred), pred
        if prediction == "x0":
            return pred, self.predict_eps(x_t, t, pred)
        sa, s1a = self.at("sqrt_alphas_cumprod", t, x_t), self.at("sqrt_one_minus_alphas_cumprod", t, x_t)
        return sa * x_t - s1a * pred, s1a * x_t + sa * pred
