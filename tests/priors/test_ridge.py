import numpy as np
import pytest
import torch

from priors.ridge import ridge_cholesky


def _reference(M, z, lam, w):
    """Weighted ridge with an unpenalised intercept via numpy.linalg.lstsq on an augmented system."""
    n, d = M.shape
    sw = np.sqrt(w)
    mbar = (w[:, None] * M).sum(0) / w.sum()
    zbar = (w * z).sum() / w.sum()
    A = np.vstack([sw[:, None] * (M - mbar), np.sqrt(lam) * np.eye(d)])
    b = np.concatenate([sw * (z - zbar), np.zeros(d)])
    alpha = np.linalg.lstsq(A, b, rcond=None)[0]
    return alpha, zbar - mbar @ alpha


@pytest.mark.parametrize("weighted", [False, True])
def test_matches_lstsq(weighted):
    rng = np.random.default_rng(0)
    B, n, d = 3, 40, 7
    M = (rng.random((B, n, d)) < 0.5).astype(float)
    z = rng.normal(size=(B, n))
    w = rng.random((B, n)) if weighted else np.ones((B, n))
    alpha, b = ridge_cholesky(torch.tensor(M), torch.tensor(z), 0.7, torch.tensor(w))
    for j in range(B):
        ref_a, ref_b = _reference(M[j], z[j], 0.7, w[j])
        np.testing.assert_allclose(alpha[j].numpy(), ref_a, atol=1e-10)
        np.testing.assert_allclose(b[j].item(), ref_b, atol=1e-10)


def test_closed_form_normal_equations():
    rng = np.random.default_rng(1)
    M = (rng.random((30, 5)) < 0.5).astype(float)
    z = rng.normal(size=30)
    alpha, _ = ridge_cholesky(torch.tensor(M)[None], torch.tensor(z)[None], 2.0)
    Mc, zc = M - M.mean(0), z - z.mean()
    expected = np.linalg.solve(Mc.T @ Mc + 2.0 * np.eye(5), Mc.T @ zc)
    np.testing.assert_allclose(alpha[0].numpy(), expected, atol=1e-12)


def test_zero_padded_columns_get_zero_and_do_not_change_the_rest():
    rng = np.random.default_rng(2)
    M = (rng.random((25, 4)) < 0.5).astype(float)
    z = rng.normal(size=25)
    small, _ = ridge_cholesky(torch.tensor(M)[None], torch.tensor(z)[None], 1.0)
    padded = np.concatenate([M, np.zeros((25, 3))], axis=1)
    big, _ = ridge_cholesky(torch.tensor(padded)[None], torch.tensor(z)[None], 1.0)
    np.testing.assert_allclose(big[0, :4].numpy(), small[0].numpy(), atol=1e-12)
    assert torch.all(big[0, 4:] == 0)


def test_bad_input_is_rejected():
    M = torch.ones(1, 4, 2)
    with pytest.raises(ValueError, match="lambda"):
        ridge_cholesky(M, torch.zeros(1, 4), 0.0)
    with pytest.raises(ValueError, match="non-finite"):
        ridge_cholesky(M, torch.tensor([[0.0, float("nan"), 0.0, 0.0]]), 1.0)
