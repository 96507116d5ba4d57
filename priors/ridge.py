"""Batched (weighted) ridge regression solved by Cholesky (docs/design.md#ridge-solve).

``α = argmin Σ_i w_i (z_i − m_iᵀα − b)² + λ‖α‖²`` with the intercept ``b`` fitted by
(weighted) centring, i.e. ``(Mᶜᵀ W Mᶜ + λI) α = Mᶜᵀ W zᶜ``: symmetric positive definite for
λ > 0, so one Cholesky factorisation per example, all examples in one batched call.
"""

from __future__ import annotations

import torch


def ridge_cholesky(
    masks: torch.Tensor,
    targets: torch.Tensor,
    lam: float = 1.0,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve a batch of ridge problems.

    Args:
        masks: ``[B, n, d]`` design matrices (0/1 masks; zero-padded columns are allowed and
            get coefficient exactly 0).
        targets: ``[B, n]`` regression targets.
        lam: ridge strength λ > 0.
        weights: ``[B, n]`` non-negative sample weights (LIME kernel); uniform when ``None``.

    Returns:
        ``(alpha [B, d], intercept [B])`` in float64.
    """
    if lam <= 0:
        raise ValueError(f"ridge lambda must be > 0 for a Cholesky solve (got {lam})")
    M = masks.to(torch.float64)
    z = targets.to(torch.float64)
    if M.dim() != 3 or z.shape != M.shape[:2]:
        raise ValueError(f"expected masks [B,n,d] and targets [B,n], got {tuple(M.shape)} and {tuple(z.shape)}")
    if not torch.isfinite(z).all():
        bad = torch.nonzero(~torch.isfinite(z))[0].tolist()
        raise ValueError(f"non-finite regression target at (example {bad[0]}, sample {bad[1]})")
    w = torch.ones_like(z) if weights is None else weights.to(torch.float64)
    wsum = w.sum(dim=1, keepdim=True).clamp_min(1e-300)
    m_mean = (w.unsqueeze(-1) * M).sum(dim=1, keepdim=True) / wsum.unsqueeze(-1)  # [B,1,d]
    z_mean = (w * z).sum(dim=1, keepdim=True) / wsum  # [B,1]
    Mc = M - m_mean
    zc = z - z_mean
    MtW = (Mc * w.unsqueeze(-1)).transpose(1, 2)  # [B,d,n]
    A = MtW @ Mc
    A.diagonal(dim1=1, dim2=2).add_(lam)
    rhs = (MtW @ zc.unsqueeze(-1))  # [B,d,1]
    L = torch.linalg.cholesky(A)
    alpha = torch.cholesky_solve(rhs, L).squeeze(-1)
    intercept = z_mean.squeeze(1) - (m_mean.squeeze(1) * alpha).sum(dim=1)
    return alpha, intercept
