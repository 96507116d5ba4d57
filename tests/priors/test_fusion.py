import numpy as np
import pytest

from priors.fusion import fuse, normalise


def test_normalisations_known_answers():
    s = np.array([1.0, 3.0, 2.0])
    np.testing.assert_allclose(normalise(s, "minmax"), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(normalise(np.array([1.0, -3.0]), "l1"), [0.25, -0.75])
    np.testing.assert_allclose(normalise(np.array([0.0, np.log(3.0)]), "softmax"), [0.25, 0.75], rtol=1e-6)
    np.testing.assert_array_equal(normalise(np.array([2.0, 2.0]), "minmax"), [0.0, 0.0])


def test_mean_and_max_fusion():
    a, b = np.array([0.0, 1.0, 2.0]), np.array([4.0, 0.0, 2.0])
    np.testing.assert_allclose(fuse([a, b], "mean"), [0.5, 0.25, 0.75])
    np.testing.assert_allclose(fuse([a, b], "max"), [1.0, 0.5, 1.0])
    np.testing.assert_allclose(fuse([a], "mean"), [0.0, 0.5, 1.0])


def test_fusion_errors():
    with pytest.raises(ValueError, match="different word counts"):
        fuse([np.zeros(2), np.zeros(3)])
    with pytest.raises(ValueError, match="non-finite"):
        normalise(np.array([np.inf, 1.0]))
    with pytest.raises(ValueError, match="unknown"):
        fuse([np.zeros(2)], how="median")


def test_a_registered_normalisation_and_fusion_are_usable_by_name():
    from priors.fusion import FUSIONS, NORMALISATIONS, register_fusion, register_normalisation

    @register_normalisation("test_rank")
    def rank(s):
        return np.argsort(np.argsort(s)).astype(np.float64)

    @register_fusion("test_min")
    def fmin(stacked):
        return stacked.min(axis=0)

    try:
        np.testing.assert_array_equal(normalise(np.array([0.3, -1.0, 2.0]), "test_rank"), [1.0, 0.0, 2.0])
        np.testing.assert_allclose(fuse([np.array([0.0, 1.0, 2.0]), np.array([2.0, 1.0, 0.0])], "test_min"), [0.0, 0.5, 0.0])
        with pytest.raises(ValueError, match="registered twice"):
            register_normalisation("minmax")(rank)
    finally:
        NORMALISATIONS.unregister("test_rank")
        FUSIONS.unregister("test_min")
