"""Claim 6: Circulant <=> commutes with the cyclic shift; n free parameters; FFT product.

See ``check_claim_6``; the package docstring says how a verdict is derived."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from harness.theory.claims.common import (
    F64,
    ClaimResult,
    _floats,
    _g,
    _generator,
    _times,
    _verdict,
)


def shift_matrix(n: int) -> Tensor:
    """The cyclic shift S with (S x)_i = x_{i-1 mod n}."""
    return torch.roll(torch.eye(n, dtype=F64), shifts=1, dims=0)


def circulant(c: Tensor) -> Tensor:
    """C[i, j] = c[(i - j) mod n]: first column c, each column the previous one shifted."""
    n = c.shape[-1]
    steps = torch.arange(n, device=c.device)
    index = (steps[:, None] - steps[None, :]) % n
    return c[..., index]


def circulant_fft_matvec(c: Tensor, x: Tensor) -> Tensor:
    """C x by the convolution theorem: C x = c (circularly convolved with) x, O(n log n)."""
    n = c.shape[-1]
    return torch.fft.irfft(torch.fft.rfft(c) * torch.fft.rfft(x), n=n)


def commutation_operator(n: int) -> Tensor:
    """The matrix of X -> X S - S X on row-major vec(X): vec(A X B) = (A kron B^T) vec(X)."""
    s = shift_matrix(n)
    eye = torch.eye(n, dtype=F64)
    return torch.kron(eye, s.T.contiguous()) - torch.kron(s, eye)


def check_claim_6(
    seed: int = 0,
    *,
    sizes: Sequence[int] = (2, 3, 4, 5, 8, 12, 16),
    trials: int = 20,
    fft_sizes: Sequence[int] = (8, 64, 512, 2048),
    stated_params_per_n: float = 1.0,
    time_products: bool = False,
    atol: float = 1e-9,
) -> ClaimResult:
    """Circulant <=> commutes with the cyclic shift; n free parameters; FFT product.

    For each n the null space of X -> XS - SX is computed (SVD): its dimension is the
    number of free parameters of matrices commuting with S, and each basis matrix is
    checked to be circulant. Random circulants must commute (relative commutator <= atol),
    random dense and slightly perturbed circulants must not; the FFT product must equal
    the dense one. ``time_products`` adds a timing series for a figure; no verdict uses it.
    """
    gen = _generator(seed, 6)
    wrong: list[str] = []
    nullities, basis_residuals, spectra = [], [], {}
    for n in sizes:
        _, sv, vh = torch.linalg.svd(commutation_operator(n))
        null = vh[sv <= 1e-10 * sv.max()]
        nullities.append(int(null.shape[0]))
        worst = 0.0
        for vec in null:
            x = vec.view(n, n)
            worst = max(worst, float(torch.linalg.norm(x - circulant(x[:, 0]))))
        basis_residuals.append(worst)
        spectra[n] = _floats(torch.sort(sv).values)
    commuting_are_circulant = max(basis_residuals) <= atol

    def relative_commutator(x: Tensor) -> float:
        s = shift_matrix(x.shape[0])
        return float(torch.linalg.norm(x @ s - s @ x) / torch.linalg.norm(x))

    circ_norms, dense_norms, perturbed_norms = [], [], []
    for t in range(trials):
        n = sizes[t % len(sizes)]
        c = circulant(torch.randn(n, generator=gen, dtype=F64))
        circ_norms.append(relative_commutator(c))
        dense_norms.append(relative_commutator(torch.randn(n, n, generator=gen, dtype=F64)))
        bump = torch.zeros(n, n, dtype=F64)
        bump[int(torch.randint(n, (1,), generator=gen)), int(torch.randint(n, (1,), generator=gen))] = 1e-6
        perturbed_norms.append(relative_commutator(c + bump))
    circulants_commute = max(circ_norms) <= atol
    others_do_not = min(dense_norms + perturbed_norms) > atol

    fft_errors = []
    for n in fft_sizes:
        c = torch.randn(n, generator=gen, dtype=F64)
        x = torch.randn(n, generator=gen, dtype=F64)
        dense = circulant(c) @ x
        fft_errors.append(float((circulant_fft_matvec(c, x) - dense).abs().max()
                                / dense.abs().max()))
    fft_ok = max(fft_errors) <= atol

    params_ok = all(k == stated_params_per_n * n for k, n in zip(nullities, sizes, strict=True))
    if not params_ok:
        wrong.append(f"{stated_params_per_n:g} n parameters")
    if not (circulants_commute and others_do_not and commuting_are_circulant):
        wrong.append("circulant iff commutes with the shift")
    if not fft_ok:
        wrong.append("FFT product equals the dense product")

    series: dict[str, list] = {
        "sizes": [float(n) for n in sizes],
        "commutant_dimension": [float(k) for k in nullities],
        "commutator_circulant": circ_norms,
        "commutator_dense": dense_norms,
        "commutator_perturbed": perturbed_norms,
        "fft_sizes": [float(n) for n in fft_sizes],
        "fft_rel_err": fft_errors,
        "singular_values_n": [float(max(sizes))],
        "singular_values": spectra[max(sizes)],
    }
    if time_products:
        dense_s, fft_s = _time_circulant_products(gen, fft_sizes)
        series.update({"timing_n": [float(n) for n in fft_sizes], "dense_s": dense_s,
                       "fft_s": fft_s})
    computed = (f"dim {{X : XS = SX}} = n for n = {min(sizes)}..{max(sizes)}"
                if all(k == n for k, n in zip(nullities, sizes, strict=True)) else
                f"dim {{X : XS = SX}} = {nullities} for n = {list(sizes)}")
    computed += (f", all circulant; commutator {_g(max(circ_norms))} (circulant) vs >= "
                 f"{_g(min(dense_norms + perturbed_norms))} (others); FFT rel. error "
                 f"{_g(max(fft_errors))}")
    return ClaimResult(
        claim=6,
        title="circulant matrices and the cyclic shift",
        writeup=(f"circulant iff commutes with the cyclic shift; {_times(stated_params_per_n, 'n')} "
                 "parameters; O(n log n) product by FFT"),
        computed=computed,
        verdict=_verdict(wrong),
        correct_value=("n parameters (the commutant of the shift has dimension n)"
                       if not params_ok else None),
        tolerance=f"relative commutator / FFT error <= {atol:g}; null space at "
                  "singular value <= 1e-10 max; exact dimension",
        measurements={
            "max_commutator_circulant": max(circ_norms),
            "min_commutator_dense": min(dense_norms),
            "min_commutator_perturbed": min(perturbed_norms),
            "max_basis_circulant_residual": max(basis_residuals),
            "commutant_dim_over_n_min": min(k / n for k, n in zip(nullities, sizes, strict=True)),
            "commutant_dim_over_n_max": max(k / n for k, n in zip(nullities, sizes, strict=True)),
            "fft_max_rel_err": max(fft_errors),
        },
        series=series,
    )


def _time_circulant_products(gen: torch.Generator, sizes: Sequence[int], repeats: int = 5
                             ) -> tuple[list[float], list[float]]:
    """Median seconds of a dense matvec and of the FFT product per n (figure only)."""
    dense_s, fft_s = [], []
    for n in sizes:
        c = torch.randn(n, generator=gen, dtype=F64)
        x = torch.randn(n, generator=gen, dtype=F64)
        matrix = circulant(c)
        candidates: list[tuple[Callable[[], Tensor], list[float]]] = [
            (lambda matrix=matrix, x=x: matrix @ x, dense_s),
            (lambda c=c, x=x: circulant_fft_matvec(c, x), fft_s),
        ]
        for fn, out in candidates:
            fn()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            out.append(float(np.median(times)))
    return dense_s, fft_s
