"""mclust's covariance models (gmm/covariance/mclust/, gmm/covariance/decomposition.py).

References, none of them our own output:

- R's mclust 6.0: ``tests/reference/mclust/models.R`` wrote ``models.json``
  (committed): Old Faithful, iris[, 1:4], mclust's diabetes[, 2:4] and Old
  Faithful's 'waiting' column; mclust's partition
  ``hclass(hc(X, 'VVV', use = 'SVD'), G)`` for G = 1..9; ``me()`` of every model
  from that partition with ``emControl(tol = c(1e-10, 1e-10))``: log-likelihood,
  BIC, ``nMclustParams``, means, proportions, covariances and ``variance``.
- scikit-learn's names, which are the same models ('spherical' = 'VII', ...).
- scipy.stats.multivariate_normal for densities; a brute-force search over the
  rotation angle for the common-orientation M-step in two dimensions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from gmm import GaussianMixture, GaussianMixtureIC, load, save, sweep
from gmm.cli import main
from gmm.covariance import (
    covariance_types,
    get_family,
    mclust_types,
    register,
    unregister,
)
from gmm.covariance.decomposition import common_orientation, decompose
from gmm.covariance.mclust import MODELS, InnerIterationWarning
from gmm.criteria import n_parameters
from gmm.statistics import Scatter

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference" / "mclust" / "models.json"
SCRIPT = ROOT / "tests" / "reference" / "mclust" / "models.R"
ALL = mclust_types()
MULTIVARIATE = mclust_types(2)

#: Cells where mclust's me() stops with "singular covariance" (returnCode -1);
#: its JSON records the reason and they are left out of every comparison.
MCLUST_FAILURES = {
    ("iris", 5, "VEE"), ("iris", 5, "EVV"), ("iris", 6, "EVV"), ("iris", 7, "VEE"),
    ("iris", 7, "EVV"), ("iris", 9, "VEE"), ("waiting", 9, "V"),
}  # fmt: skip
#: mclust's VVE M-step does not reach the constrained maximum (on faithful,
#: G = 2, its mstepVVE from the hc partition ends at -2·logL 920.8535 where the
#: optimum, found here and by a grid over the angle, is 920.7204), so from the
#: same start our VVE ends at a higher log-likelihood: checked as such.
HIGHER_THAN_MCLUST = {"VVE"}
#: The (data, G, models) cells of the default suite, about 10 s: EVE's and VVE's
#: MM M-steps take seconds where EM needs hundreds of iterations, so they run
#: on the cells where it needs few. GMM_MCLUST_ALL=1 runs all 36 (data, G).
SLOW_MM = {"EVE", "VVE"}
CELLS = [
    ("faithful", 2, MULTIVARIATE),
    ("iris", 2, MULTIVARIATE),
    ("faithful", 3, tuple(m for m in MULTIVARIATE if m != "VVE")),
    ("diabetes", 3, tuple(m for m in MULTIVARIATE if m not in SLOW_MM)),
    ("waiting", 3, ("E", "V")),
]


def array(entry) -> np.ndarray:
    """An R array from the JSON: values in column-major order with their dim."""
    return np.asarray(entry["data"], dtype=float).reshape(entry["dim"], order="F")


@pytest.fixture(scope="module")
def reference():
    return json.loads(REFERENCE.read_text())


@pytest.fixture(scope="module")
def tight():
    """Every model with mclust's inner tolerance of the reference (1e-10)."""
    names = [register(cls(name=f"tight-{m}", inner_tol=1e-10, max_inner_iter=100_000)).name
             for m, cls in MODELS.items()]  # fmt: skip
    yield
    for name in names:
        unregister(name)


def mclust_sigma(fit, d, G) -> np.ndarray:
    return np.moveaxis(np.broadcast_to(array(fit["sigma"]).reshape(d, d, -1), (d, d, G)), -1, 0)


def fit_like_mclust(X, cell, fit) -> GaussianMixture:
    """Our EM from mclust's partition, stopped by mclust's rule.

    mclust stops when ``|ΔlogL| / (1 + |logL|) < 1e-10``; the driver's ``tol``
    is on the mean log-likelihood, hence the scaling. Both then run the same
    number of iterations; mclust reports the parameters of its last M-step and
    the log-likelihood of its last E-step, ours are one M-step later, which
    moves the log-likelihood by less than 1e-9 relative.
    """
    G = cell["G"]
    resp = np.eye(G)[np.asarray(cell["classification"]) - 1]
    model = GaussianMixture(
        G,
        covariance_type=f"tight-{fit['model']}",
        init_params=lambda X, k, rs: resp,
        tol=1e-10 * (1 + abs(fit["loglik"])) / X.shape[0],
        max_iter=100_000,
        reg_covar=0,
    )
    return model.fit(X)


def compare_with_mclust(X, cell, fit, data_name):
    n, d = X.shape
    G = cell["G"]
    model = fit_like_mclust(X, cell, fit)
    log_likelihood = model.score(X) * n
    p = n_parameters(get_family(model.covariance_type), G, d)
    assert p == fit["n_params"]
    # mclust's BIC is 2 logL - p log n, higher is better; ours is its negative.
    assert fit["bic"] == pytest.approx(2 * fit["loglik"] - p * np.log(n), rel=1e-12)
    if fit["model"] in HIGHER_THAN_MCLUST:
        assert log_likelihood >= fit["loglik"] - 1e-6 * abs(fit["loglik"])
        return
    assert log_likelihood == pytest.approx(fit["loglik"], rel=1e-6)
    assert model.bic(X) == pytest.approx(-fit["bic"], rel=1e-6)
    scale = np.max(np.abs(X))
    np.testing.assert_allclose(model.weights_, array(fit["pro"]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.means_, array(fit["mean"]).reshape(d, G).T, atol=1e-4 * scale)
    sigma = mclust_sigma(fit, d, G)
    np.testing.assert_allclose(model.covariances_, sigma, atol=1e-4 * np.max(np.abs(sigma)))
    compare_variance(model.variance_, fit["variance"], fit["model"], sigma)


def compare_variance(ours, theirs, model, sigma):
    """Our decomposition against mclust's ``variance``, up to the order and signs of axes."""
    top = np.max(np.abs(sigma))
    if "sigmasq" in theirs:
        np.testing.assert_allclose(ours["sigmasq"], array(theirs["sigmasq"]).squeeze(), rtol=1e-4)
    if "orientation" not in theirs:
        if "shape" in theirs:  # axis-aligned: shapes follow the features
            np.testing.assert_allclose(ours["scale"], array(theirs["scale"]).squeeze(), rtol=1e-4)
            shape = array(theirs["shape"])
            expected = shape.T if shape.ndim == 2 else shape
            np.testing.assert_allclose(ours["shape"], expected, rtol=1e-4, atol=1e-6)
        return
    np.testing.assert_allclose(ours["scale"], array(theirs["scale"]).squeeze(), rtol=1e-4)
    d = sigma.shape[1]
    axes = np.broadcast_to(array(theirs["orientation"]).reshape(d, d, -1), (d, d, len(sigma)))
    for k, cov in enumerate(ours["sigma"]):
        # mclust's axes diagonalise our covariance into its scale·shape.
        rotated = axes[:, :, k].T @ cov @ axes[:, :, k]
        np.testing.assert_allclose(rotated, np.diag(np.diag(rotated)), atol=1e-4 * top)
        expected = axes[:, :, k].T @ sigma[k] @ axes[:, :, k]
        np.testing.assert_allclose(np.diag(rotated), np.diag(expected), atol=1e-4 * top)


def cells(reference, selected, models=ALL):
    for data_name, G in selected:
        data = reference["datasets"][data_name]
        X = array(data["X"])
        cell = data["cells"][G - 1]
        for fit in cell["fits"]:
            if (data_name, G, fit["model"]) not in MCLUST_FAILURES and fit["model"] in models:
                yield data_name, X, cell, fit


# ================================================================ against R
def test_reference_records_exactly_the_known_mclust_failures(reference):
    failed = {
        (name, cell["G"], fit["model"])
        for name, data in reference["datasets"].items()
        for cell in data["cells"]
        for fit in cell["fits"]
        if not fit["ok"]
    }
    assert failed == MCLUST_FAILURES
    assert reference["mclust_version"].startswith("6.")
    assert reference["control"]["tol"] == [1e-10, 1e-10]


def test_parameter_counts_are_mclusts(reference):
    """Every model, d = 1..4, G = 1..9 against nMclustParams."""
    checked = 0
    for data in reference["datasets"].values():
        d = array(data["X"]).shape[1]
        for cell in data["cells"]:
            for fit in cell["fits"]:
                if fit["ok"]:
                    assert n_parameters(get_family(fit["model"]), cell["G"], d) == fit["n_params"]
                    checked += 1
    assert checked == 3 * 9 * 14 + 9 * 2 - len(MCLUST_FAILURES)


@pytest.mark.parametrize("data_name,G,models", CELLS, ids=[f"{c[0]}-{c[1]}" for c in CELLS])
def test_same_start_same_fixed_point_as_mclust(reference, tight, data_name, G, models):
    compared = 0
    for name, X, cell, fit in cells(reference, [(data_name, G)], models):
        compare_with_mclust(X, cell, fit, name)
        compared += 1
    assert compared == len(models)


@pytest.mark.skipif(
    not os.environ.get("GMM_MCLUST_ALL"),
    reason="every (data, G, model) cell takes minutes (EVE's MM M-step): set GMM_MCLUST_ALL=1",
)
def test_every_cell_against_mclust(reference, tight):
    every = [(name, G) for name in reference["datasets"] for G in range(1, 10)]
    for name, X, cell, fit in cells(reference, every):
        compare_with_mclust(X, cell, fit, name)


def _mclust_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(
        ["Rscript", "-e", "library(mclust); library(jsonlite)"], capture_output=True, timeout=60
    )
    return probe.returncode == 0


def test_live_mclust_reproduces_the_committed_reference(reference, tmp_path):
    if not _mclust_available():  # probed here, not at collection: R starts slowly
        pytest.skip("Rscript with mclust and jsonlite not found")
    out = tmp_path / "models.json"
    subprocess.run(
        ["Rscript", str(SCRIPT), str(out), "faithful,waiting", "2"],
        check=True, capture_output=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    live = json.loads(out.read_text())
    for name, data in live["datasets"].items():
        stored = reference["datasets"][name]
        np.testing.assert_array_equal(array(data["X"]), array(stored["X"]))
        for cell, kept in zip(data["cells"], stored["cells"]):
            assert cell["classification"] == kept["classification"]
            for fit, fit_kept in zip(cell["fits"], kept["fits"]):
                assert fit["ok"] == fit_kept["ok"]
                if fit["ok"]:
                    assert fit["loglik"] == pytest.approx(fit_kept["loglik"], rel=1e-9)
                    np.testing.assert_allclose(
                        array(fit["sigma"]), array(fit_kept["sigma"]), rtol=1e-6, atol=1e-9
                    )


def test_common_orientation_step_is_the_optimum_over_the_angle(reference):
    """EVE's and VVE's M-step in 2-D against a grid over the rotation angle."""
    data = reference["datasets"]["faithful"]
    X = array(data["X"])
    z = np.eye(2)[np.asarray(data["cells"][1]["classification"]) - 1]
    nk = z.sum(axis=0)
    means = z.T @ X / nk[:, None]
    W = np.stack([((X - m) * z[:, [k]]).T @ (X - m) for k, m in enumerate(means)])

    def objective(axes, psi):  # -2 logL of the M-step, up to constants
        return sum(
            nk[k] * np.sum(np.log(psi[k])) + np.sum(np.diag(axes.T @ W[k] @ axes) / psi[k])
            for k in range(2)
        )

    angles = np.linspace(-np.pi / 2, np.pi / 2, 100_001)
    c, s = np.cos(angles), np.sin(angles)
    rotations = np.stack([np.stack([c, -s], axis=-1), np.stack([s, c], axis=-1)], axis=1)
    # omega[a, k, j] = (R_a' W_k R_a)_jj
    omega = np.einsum("aij,kil,alj->akj", rotations, W, rotations)
    for equal_volume in (True, False):
        axes, psi, result = common_orientation(W, nk, equal_volume, None, 1e-12, 100_000)
        assert result.worst is None
        if equal_volume:
            volumes = np.exp(np.mean(np.log(omega), axis=2))
            diag = omega / volumes[:, :, None] * (volumes.sum(axis=1) / nk.sum())[:, None, None]
        else:
            diag = omega / nk[None, :, None]
        grid = np.sum(nk[None, :, None] * np.log(diag) + omega / diag, axis=(1, 2))
        assert objective(axes, psi) <= grid.min() + 1e-7
        np.testing.assert_allclose(axes.T @ axes, np.eye(2), atol=1e-12)
