"""Claim 4: Newton's step, the MLP's parameter and Hessian size, and Hessian-vector products.

See ``check_claim_4``; the package docstring says how a verdict is derived."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, hessian, jvp

from harness.theory.claims.common import (
    F64,
    ClaimResult,
    _g,
    _generator,
    _lbfgs_minimize,
    _power,
    _random_smooth_problem,
    _times,
    _verdict,
    loglog_slope,
)


def mlp_widths_param_count(widths: Sequence[int], bias: bool = True) -> int:
    """Parameters of nn.Sequential(Linear(w0, w1), Tanh, ..., Linear(w_{k-1}, w_k)).

    Built on the meta device, so no memory is used and no RNG state is consumed.
    """
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out, bias=bias, device="meta"))
        if i < len(widths) - 2:
            layers.append(nn.Tanh())
    return sum(p.numel() for p in nn.Sequential(*layers).parameters())


def _small_mlp_loss(gen: torch.Generator, widths: Sequence[int], batch: int
                    ) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """A smooth (tanh) MLP's mean squared error as a function of its flat parameter vector."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out, device="meta", dtype=F64))
        if i < len(widths) - 2:
            layers.append(nn.Tanh())
    model = nn.Sequential(*layers)
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [math.prod(s) for s in shapes]
    x = torch.randn(batch, widths[0], generator=gen, dtype=F64)
    y = torch.randn(batch, widths[-1], generator=gen, dtype=F64)
    flat = torch.randn(sum(sizes), generator=gen, dtype=F64) * 0.5

    def loss(theta: Tensor) -> Tensor:
        params = {name: chunk.view(shape) for name, chunk, shape in
                  zip(names, torch.split(theta, sizes), shapes, strict=True)}
        out = functional_call(model, params, (x,))
        return ((out - y) ** 2).mean()

    return loss, flat


def _fit_truncation_range(rs: Sequence[float], errors: Sequence[float], rounding: Sequence[float]
                          ) -> tuple[float, list[int]]:
    """Slope of log error vs log r over the points where truncation error dominates the
    floating-point rounding estimate by 100x (small r is ruled by rounding, not by r^k)."""
    keep = [i for i, (e, floor) in enumerate(zip(errors, rounding, strict=True))
            if e > 100 * floor]
    return loglog_slope([rs[i] for i in keep], [errors[i] for i in keep]), keep


def check_claim_4(
    seed: int = 0,
    *,
    widths: Sequence[int] = (50, 50, 50, 10),
    stated_param_count: int = 7500,
    stated_hessian_entries: int = 5500 ** 2 * 10,
    stated_newton_scale: float = -1.0,
    stated_fd_order: float = 1.0,
    small_widths: Sequence[int] = (4, 6, 5, 3),
    radii: Sequence[float] | None = None,
    rtol: float = 1e-6,
    order_tol: float = 0.25,
) -> ClaimResult:
    """Newton's step, the MLP's parameter and Hessian size, and Hessian-vector products.

    (a) d = stated_newton_scale * H^{-1} g (write-up: -1) against the numerical argmin of the
    quadratic model on random problems; (b) the parameter count of the MLP with layer
    widths ``widths`` (biases included) and its Hessian's entry count against the
    write-up's 7,500 and 5500^2 x 10; (c) on a small tanh MLP in float64, the full Hessian
    times v against the forward-over-reverse HVP (exact), and forward / central finite
    differences of gradients against r, with fitted orders (write-up: forward is O(r)).
    """
    gen = _generator(seed, 4)
    wrong: list[str] = []
    # (a) Newton step vs the numerical minimizer of the quadratic model.
    newton_rel = []
    for d in (2, 5, 10):
        for kind in ("logistic", "quadratic"):
            f = _random_smooth_problem(gen, d, kind)
            w0 = torch.randn(d, generator=gen, dtype=F64)
            g0, h0 = grad(f)(w0), hessian(f)(w0)

            def model(step: Tensor, g0: Tensor = g0, h0: Tensor = h0) -> Tensor:
                return g0 @ step + 0.5 * step @ (h0 @ step)

            numerical = _lbfgs_minimize(model, torch.randn(d, generator=gen, dtype=F64))
            stated = stated_newton_scale * torch.linalg.solve(h0, g0)
            newton_rel.append(float(torch.linalg.norm(numerical - stated)
                                    / torch.linalg.norm(numerical)))
    newton_max = max(newton_rel)
    if newton_max > rtol:
        wrong.append(f"Newton step {stated_newton_scale:g} H^-1 g")

    # (b) parameter count and Hessian size.
    count = mlp_widths_param_count(widths)
    weights_only = mlp_widths_param_count(widths, bias=False)
    entries = count * count
    count_ok = stated_param_count == count
    hessian_ok = stated_hessian_entries == entries
    if not count_ok:
        wrong.append(f"parameter count {stated_param_count:,}")
    if not hessian_ok:
        wrong.append(f"Hessian entries {stated_hessian_entries:,}")

    # (c) Hessian-vector products on a small MLP.
    loss, theta = _small_mlp_loss(gen, small_widths, batch=16)
    v = torch.randn(theta.numel(), generator=gen, dtype=F64)
    v = v / torch.linalg.norm(v)
    full_h = hessian(loss)(theta)
    hv_full = full_h @ v
    grad_fn = grad(loss)
    _, hv_rop = jvp(grad_fn, (theta,), (v,))  # R_v{grad f}: forward-over-reverse
    scale = float(torch.linalg.norm(hv_full))
    rop_err = float(torch.linalg.norm(hv_rop - hv_full)) / scale
    g0 = grad_fn(theta)
    if radii is None:
        radii = [float(r) for r in np.logspace(-1, -7, 13)]
    eps = torch.finfo(F64).eps
    g_norm = float(torch.linalg.norm(g0))
    fwd_err, cen_err, rounding = [], [], []
    for r in radii:
        forward = (grad_fn(theta + r * v) - g0) / r
        central = (grad_fn(theta + r * v) - grad_fn(theta - r * v)) / (2 * r)
        fwd_err.append(float(torch.linalg.norm(forward - hv_rop)) / scale)
        cen_err.append(float(torch.linalg.norm(central - hv_rop)) / scale)
        rounding.append(eps * g_norm / (r * scale))  # relative rounding error of g(w+rv)-g(w)
    fwd_slope, fwd_keep = _fit_truncation_range(radii, fwd_err, rounding)
    cen_slope, cen_keep = _fit_truncation_range(radii, cen_err, rounding)
    if rop_err > 1e-10:
        wrong.append("H v = R_v{grad f} by forward-over-reverse")
    if not abs(fwd_slope - stated_fd_order) <= order_tol:
        wrong.append(f"forward-difference error O(r^{stated_fd_order:g})")

    correct = []
    if not count_ok or not hessian_ok:
        correct.append(f"{count:,} parameters ({weights_only:,} weights + {count - weights_only}"
                       f" biases); Hessian {count:,} x {count:,} = {entries:,} entries")
    if newton_max > rtol:
        correct.append("Newton step -H^-1 g")
    if abs(fwd_slope - stated_fd_order) > order_tol:
        correct.append(f"forward-difference error O(r^{round(fwd_slope)})")
    computed = (f"{count:,} parameters ({weights_only:,} weights + {count - weights_only:,} "
                f"biases), Hessian {count:,} x {count:,}; Newton rel. diff {_g(newton_max)}; "
                f"R-op error {_g(rop_err)}; FD order {fwd_slope:.2f} (forward), {cen_slope:.2f} "
                "(central)")
    return ClaimResult(
        claim=4,
        title="Newton step, MLP Hessian size, Hessian-vector products",
        writeup=(f"MLP {'-'.join(map(str, widths))}: {stated_param_count:,} parameters, "
                 f"Hessian {stated_hessian_entries:,} entries"
                 + (" (5500^2 x 10)" if stated_hessian_entries == 5500 ** 2 * 10 else "")
                 + f"; Newton step {_times(stated_newton_scale, 'H^-1 g')}; FD error "
                 f"O({_power('r', stated_fd_order)}); H v = R_v{{grad f}}"),
        computed=computed,
        verdict=_verdict(wrong),
        correct_value="; ".join(correct) if correct else None,
        tolerance=(f"exact counts; relative difference <= {rtol:g} (Newton), 1e-10 (R-op); "
                   f"fitted order within {order_tol:g}"),
        measurements={
            "param_count": float(count),
            "weight_count": float(weights_only),
            "hessian_entries": float(entries),
            "stated_param_count": float(stated_param_count),
            "param_count_matches": float(count_ok),
            "hessian_matches": float(hessian_ok),
            "newton_max_rel_diff": newton_max,
            "rop_rel_err": rop_err,
            "forward_slope": fwd_slope,
            "central_slope": cen_slope,
            "small_mlp_params": float(theta.numel()),
        },
        series={
            "r": list(radii),
            "forward_err": fwd_err,
            "central_err": cen_err,
            "forward_fit_r": [radii[i] for i in fwd_keep],
            "central_fit_r": [radii[i] for i in cen_keep],
        },
    )
