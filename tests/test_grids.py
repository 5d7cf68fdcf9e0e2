"""gmm.grids: the article's two-kernel heatmap against its per-pixel loop, and more."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from gmm import GaussianMixture, evaluate_grid, mvn_pdf

# The article's set-up: kernel 1 round (sigmaX1 = sigmaY1) and inside kernel 2,
# which is taller than wide (sigmaX2 < sigmaY2); coordinates are pixels.
HEIGHT = WIDTH = 1000
MU_Y1, MU_X1, SIGMA_1 = 480.0, 450.0, 60.0
MU_Y2, MU_X2, SIGMA_Y2, SIGMA_X2 = 520.0, 500.0, 220.0, 110.0


def _pixel_density(y, x, mu_y, mu_x, sigma_y, sigma_x):
    """The article's per-pixel density: a product of two scipy 1-D normal pdfs."""
    return norm.pdf(y, loc=mu_y, scale=sigma_y) * norm.pdf(x, loc=mu_x, scale=sigma_x)


def _loop_heatmap(rows, cols):
    """The article's loop, on the given pixel rows and columns only."""
    out = np.zeros((len(rows), len(cols)))
    for a, y in enumerate(rows):
        for b, x in enumerate(cols):
            p1 = _pixel_density(y, x, MU_Y1, MU_X1, SIGMA_1, SIGMA_1)
            p2 = _pixel_density(y, x, MU_Y2, MU_X2, SIGMA_Y2, SIGMA_X2)
            out[a, b] = 1.0 - (1.0 - p1) * (1.0 - p2)
    return out


def test_article_heatmap_equals_the_per_pixel_loop():
    kernels = [
        ([MU_X1, MU_Y1], [SIGMA_1**2, SIGMA_1**2]),
        ([MU_X2, MU_Y2], [SIGMA_X2**2, SIGMA_Y2**2]),
    ]
    xx, yy, zz = evaluate_grid(
        kernels, (0, WIDTH - 1), (0, HEIGHT - 1), (HEIGHT, WIDTH), combine="union"
    )
    assert zz.shape == (HEIGHT, WIDTH)
    rows = np.arange(5, HEIGHT, 10)  # a 100 x 100 subset spread over the image
    cols = np.arange(3, WIDTH, 10)
    np.testing.assert_array_equal(xx[0, cols], cols)
    np.testing.assert_array_equal(yy[rows, 0], rows)
    np.testing.assert_allclose(zz[np.ix_(rows, cols)], _loop_heatmap(rows, cols), rtol=1e-10)


def test_coordinates_are_those_of_meshgrid():
    xx, yy, zz = evaluate_grid(lambda p: p[:, 0] - 3 * p[:, 1], (-1, 2), (0, 5), shape=(4, 7))
    ex, ey = np.meshgrid(np.linspace(-1, 2, 7), np.linspace(0, 5, 4))
    np.testing.assert_array_equal(xx, ex)
    np.testing.assert_array_equal(yy, ey)
    np.testing.assert_allclose(zz, ex - 3 * ey)


def test_sum_and_max_of_components():
    parts = [([0.0, 0.0], [[2.0, 1.0], [1.0, 1.0]]), ([1.0, 1.0], 0.5)]
    xx, yy, total = evaluate_grid(parts, (-3, 3), (-3, 3), 30, combine="sum")
    _, _, peak = evaluate_grid(parts, (-3, 3), (-3, 3), 30, combine="max")
    points = np.column_stack([xx.ravel(), yy.ravel()])
    first = multivariate_normal([0.0, 0.0], [[2.0, 1.0], [1.0, 1.0]]).pdf(points)
    second = multivariate_normal([1.0, 1.0], 0.5 * np.eye(2)).pdf(points)
    np.testing.assert_allclose(total.ravel(), first + second, rtol=1e-12)
    np.testing.assert_allclose(peak.ravel(), np.maximum(first, second), rtol=1e-12)


def test_fitted_model_is_evaluated_through_score_samples():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 4])
    model = GaussianMixture(2, random_state=0).fit(X)
    xx, yy, zz = evaluate_grid(model, (-3, 7), (-3, 7), (20, 25))
    points = np.column_stack([xx.ravel(), yy.ravel()])
    np.testing.assert_allclose(zz.ravel(), np.exp(model.score_samples(points)), rtol=1e-12)


def test_grid_spanning_several_blocks_matches_direct_evaluation():
    # 300 x 5000 points make several 8 MB blocks.
    mean, cov = [0.0, 0.0], [[1.0, 0.3], [0.3, 2.0]]
    xx, yy, zz = evaluate_grid([(mean, cov)], (-4, 4), (-4, 4), (300, 5000))
    expected = mvn_pdf(np.column_stack([xx.ravel(), yy.ravel()]), mean, cov)
    np.testing.assert_array_equal(zz.ravel(), expected)


def test_large_grid_needs_little_extra_memory():
    tracemalloc.start()
    try:
        _, _, zz = evaluate_grid(lambda p: np.hypot(p[:, 0], p[:, 1]), (-1, 1), (-1, 1), 4000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert zz.shape == (4000, 4000)
    assert peak - zz.nbytes < 100 * 2**20
    assert zz[0, 0] == pytest.approx(np.sqrt(2))


def test_union_needs_probabilities():
    with pytest.raises(ValueError, match=r"needs every value in \[0, 1\]"):
        evaluate_grid([lambda p: 2 + 0 * p[:, 0]] * 2, (0, 1), (0, 1), 5, combine="union")


@pytest.mark.parametrize(
    ("f", "kwargs", "match"),
    [
        (lambda p: p[:, 0], {"combine": "mean"}, "Unknown combine 'mean'.*'union'"),
        (lambda p: p[:, 0], {"shape": (1, 5)}, "shape must be"),
        (lambda p: p[:, 0], {"xlim": (1, 0)}, "xlim must be finite with low < high"),
        (lambda p: p[:, 0], {"ylim": (0, np.nan)}, "ylim must be finite"),
        (lambda p: p[:2, 0], {}, "returned shape"),
        ([], {}, "empty list"),
        (([0.0, 0.0], 1.0), {}, r"\[\(mean, cov\)\]"),
        ([([0.0, 0.0, 0.0], 1.0)], {}, r"mean has shape \(3,\)"),
        ([([0.0, 0.0], np.ones((2, 3)))], {}, "must be square"),
        (GaussianMixture(2), {}, "not fitted"),
    ],
)
def test_bad_input_names_the_problem(f, kwargs, match):
    args = {"xlim": (0, 1), "ylim": (0, 1), "shape": 5, **kwargs}
    combine = args.pop("combine", "sum")
    with pytest.raises(ValueError, match=match):
        evaluate_grid(f, args["xlim"], args["ylim"], args["shape"], combine=combine)


def test_model_with_three_features_is_rejected():
    model = GaussianMixture(1, random_state=0).fit(np.random.default_rng(0).normal(size=(50, 3)))
    with pytest.raises(ValueError, match="fitted on 3 features; a grid needs 2"):
        evaluate_grid(model, (0, 1), (0, 1), 5)


@pytest.mark.parametrize("shape", [5.0, "ab", [5, 2.5], (5,)])
def test_a_grid_shape_that_is_not_ints_is_a_clear_error(shape):
    with pytest.raises(ValueError, match="shape must be an int or a pair"):
        evaluate_grid([([0.0, 0.0], 1.0)], (0, 1), (0, 1), shape)


def test_a_0d_integer_array_is_a_grid_shape():
    *_, z = evaluate_grid([([0.0, 0.0], 1.0)], (0, 1), (0, 1), np.array(4))
    assert z.shape == (4, 4)


def test_union_checks_a_single_density_too():
    with pytest.raises(ValueError, match="combine='union'"):
        evaluate_grid([([0.0, 0.0], 1e-4)], (-1, 1), (-1, 1), 9, combine="union")
