"""gmm.plotting under the Agg backend: every function draws, for every covariance type."""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gmm import GaussianMixture
from gmm.plotting import plot_density, plot_ellipses, plot_samples

COVARIANCE_TYPES = ["spherical", "diag", "full", "tied"]


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    stretched = rng.normal(size=(150, 2)) @ np.array([[2.0, 0.0], [1.2, 0.5]])
    return np.vstack([stretched, rng.normal(size=(150, 2)) * 0.6 + [5.0, 4.0]])


@pytest.fixture(scope="module")
def models(data) -> dict[str, GaussianMixture]:
    return {
        ct: GaussianMixture(2, covariance_type=ct, random_state=0).fit(data)
        for ct in COVARIANCE_TYPES
    }


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_ellipses_for_every_covariance_type(ax, models, covariance_type):
    model = models[covariance_type]
    patches = plot_ellipses(ax, model, n_std=(1, 2, 3))
    assert len(ax.patches) == len(patches) == 2 * 3
    assert ax.get_xlabel() and ax.get_ylabel()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_ellipse_boundary_is_at_mahalanobis_distance_n(ax, models, covariance_type):
    model = models[covariance_type]
    patches = plot_ellipses(ax, model, n_std=(1, 2.5))
    radii = [1, 2.5] * 2
    for k, (patch, radius) in enumerate(zip(patches, radii, strict=True)):
        component = k // 2
        cov = {
            "spherical": lambda c: model.covariances_[c] * np.eye(2),
            "diag": lambda c: np.diag(model.covariances_[c]),
            "full": lambda c: model.covariances_[c],
            "tied": lambda c: model.covariances_,
        }[covariance_type](component)
        # The patch transform maps the unit circle onto the ellipse.
        angles = np.linspace(0, 2 * np.pi, 17)
        circle = np.column_stack([np.cos(angles), np.sin(angles)])
        boundary = patch.get_patch_transform().transform(circle)
        diff = boundary - model.means_[component]
        maha = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
        np.testing.assert_allclose(np.sqrt(maha), radius, rtol=1e-6)


def test_ellipses_of_a_scikit_learn_model(ax, data):
    model = SkGaussianMixture(3, covariance_type="full", random_state=0).fit(data)
    assert len(plot_ellipses(ax, model, n_std=2)) == 3


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("kind", ["contour", "heatmap"])
def test_density_2d_kinds(ax, models, covariance_type, kind):
    artist = plot_density(ax, models[covariance_type], kind=kind, shape=40)
    drawn = ax.images if kind == "heatmap" else ax.collections
    assert len(drawn) > 0 and artist is not None
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y"


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_density_surface_on_3d_axes(models, covariance_type):
    fig = plt.figure()
    ax3d = fig.add_subplot(projection="3d")
    plot_density(ax3d, models[covariance_type], kind="surface", shape=30)
    assert len(ax3d.collections) == 1
    assert ax3d.get_zlabel() == "density"
    plt.close(fig)


def test_density_of_a_callable_and_of_components(ax):
    plot_density(
        ax, lambda p: np.exp(-(p**2).sum(axis=1)), kind="contour", xlim=(-2, 2), ylim=(-2, 2)
    )
    plot_density(ax, [([1.0, 0.5], [[2.0, 1.0], [1.0, 1.0]])], kind="heatmap", shape=30)
    assert ax.collections and ax.images


def test_heatmap_extent_matches_the_limits(ax):
    image = plot_density(
        ax, [([0.0, 0.0], 1.0)], kind="heatmap", xlim=(-1, 3), ylim=(-2, 5), shape=10
    )
    assert tuple(image.get_extent()) == (-1, 3, -2, 5)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_samples_sized_by_certainty(ax, data, models, covariance_type):
    model = models[covariance_type]
    proba = model.predict_proba(data)
    points = plot_samples(ax, data, proba=proba)
    assert list(ax.collections) == [points]
    np.testing.assert_allclose(points.get_sizes(), 40 * proba.max(axis=1) ** 2)
    colors = points.get_facecolors()
    labels = proba.argmax(axis=1)
    # Same label, same color; different labels, different colors.
    assert np.allclose(colors[labels == 0], colors[labels == 0][0])
    assert not np.allclose(colors[labels == 0][0], colors[labels == 1][0])


def test_samples_with_labels_or_plain(ax, data):
    plot_samples(ax, data, labels=np.arange(len(data)) % 3)
    plot_samples(ax, data)
    assert len(ax.collections) == 2
    assert ax.get_xlabel() == "feature 0"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ax, m: plot_density(ax, m, kind="surface"), "needs a 3-D Axes"),
        (lambda ax, m: plot_density(ax, m, kind="bars"), "kind must be one of"),
        (lambda ax, m: plot_density(ax, lambda p: p[:, 0]), "xlim and ylim are needed"),
        (lambda ax, m: plot_ellipses(ax, GaussianMixture(2)), "fitted Gaussian mixture"),
        (lambda ax, m: plot_ellipses(ax, m, n_std=(1, -2)), "n_std must be positive"),
        (lambda ax, m: plot_ellipses(ax, m, dims=(0, 0)), "two different feature indices"),
        (lambda ax, m: plot_samples(ax, np.zeros(5)), "X must be 2-D"),
        (lambda ax, m: plot_samples(ax, np.zeros((5, 2)), labels=[0, 1]), "labels must be"),
        (lambda ax, m: plot_samples(ax, np.zeros((5, 2)), proba=np.ones((4, 2))), "proba has"),
        (lambda ax, m: plot_samples(ax, np.zeros((2, 2)), proba=[[2, 0], [0, 1]]), r"\[0, 1\]"),
    ],
)
def test_bad_input_names_the_problem(ax, models, call, match):
    with pytest.raises(ValueError, match=match):
        call(ax, models["full"])


def test_missing_matplotlib_says_how_to_install(monkeypatch, ax, models):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "gmm\[plot\]"'):
        plot_ellipses(ax, models["full"])


def test_no_axes_is_a_clear_error(models, data):
    model = models["full"]
    calls = [
        lambda: plot_ellipses(None, model),
        lambda: plot_density(None, model),
        lambda: plot_samples(None, data),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
            call()
