"""mclust's conjugate prior (gmm/prior.py) and ``GaussianMixture(prior=...)``.

References, none of them our own output:

- R's mclust 6.0: ``tests/reference/mclust/prior.R`` wrote ``prior.json``
  (committed): for Old Faithful, iris[, 1:4], mclust's diabetes[, 2:4] (data in
  ``models.json``) and Old Faithful's 'waiting' column, mclust's partition
  ``hclass(hc(X, 'VVV', use = 'SVD'), G)`` for G in 1, 2, 3, 5, 9 and
  ``me(..., prior = priorControl())`` of every model mclust fits with a prior,
  with ``emControl(tol = c(1e-10, 1e-10))``: log-likelihood, BIC, proportions,
  means, covariances, and ``defaultPrior(X, G, model)``; and the warning of
  each model mclust refuses with a prior.
- numpy's mean and ``np.cov`` for the default prior's values.
- The maximum-likelihood fit on data where a component collapses (it raises),
  for what the prior prevents.
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
from hypothesis import given, settings
from hypothesis import strategies as st

from gmm import GaussianMixture, load, save, sweep
from gmm.cli import main
from gmm.covariance import CollapsedComponentError, get_family
from gmm.covariance.mclust import MULTIVARIATE
from gmm.prior import MODELS_WITH_PRIOR, TWINS, default_prior, posterior_scatter
from gmm.statistics import Scatter
from tests.test_covariance_mclust import array, failed_cells, tight  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference" / "mclust" / "prior.json"
DATA = ROOT / "tests" / "reference" / "mclust" / "models.json"
SCRIPT = ROOT / "tests" / "reference" / "mclust" / "prior.R"

#: (data, G) cells of the default suite, a few seconds; GMM_MCLUST_ALL=1 runs all 20.
CELLS = [("faithful", 2), ("faithful", 3), ("iris", 3), ("diabetes", 2), ("waiting", 2)]
#: Cells where mclust's me() stops ("mixing proportion fell below threshold",
#: returnCode -3); the JSON records the reason and they are left out.
MCLUST_FAILURES = {
    ("faithful", 5, "VEI"), ("faithful", 9, "VEI"), ("faithful", 9, "EVI"),
    ("faithful", 9, "VVI"), ("iris", 5, "VEV"), ("iris", 9, "EVI"),
    ("diabetes", 9, "VEI"), ("diabetes", 9, "EVI"), ("diabetes", 9, "EEV"),
}  # fmt: skip
#: A cell where the likelihood is flat along the EEI means and weights: both fits
#: take mclust's 382 iterations and agree on the log-likelihood to 1e-10, but
#: rounding moves the weights by up to 4e-4 relative (1e-5 absolute), so its
#: parameters are compared to 1e-3 (only with GMM_MCLUST_ALL=1).
FLAT = {("faithful", 9, "EEI"): 1e-3}


@pytest.fixture(scope="module")
def reference():
    return json.loads(REFERENCE.read_text())


@pytest.fixture(scope="module")
def datasets():
    data = json.loads(DATA.read_text())["datasets"]
    return {name: array(entry["X"]) for name, entry in data.items()}


def start(classification, G):
    resp = np.eye(G)[np.asarray(classification) - 1]
    return lambda X, k, rs: resp


def fit_like_mclust(X, cell, fit, covariance_type=None) -> GaussianMixture:
    """Our MAP EM from mclust's partition, stopped by mclust's rule (as in test_covariance_mclust)."""
    G = cell["G"]
    model = GaussianMixture(
        G,
        covariance_type=covariance_type or f"tight-{fit['model']}",
        init_params=start(cell["classification"], G),
        tol=1e-10 * (1 + abs(fit["loglik"])) / X.shape[0],
        max_iter=100_000,
        reg_covar=0,
        prior="default",
    )
    return model.fit(X)


def reference_fits(reference, datasets, selected):
    for name, G in selected:
        cell = next(c for c in reference["datasets"][name]["cells"] if c["G"] == G)
        for fit in cell["fits"]:
            if fit["ok"]:
                yield name, datasets[name], cell, fit


def compare_with_mclust(X, cell, fit, model, rtol=1e-4):
    n, d = X.shape
    G = cell["G"]
    log_likelihood = model.score(X) * n
    assert log_likelihood == pytest.approx(fit["loglik"], rel=1e-6)
    # mclust's BIC (2 logL - p log n, of the log-likelihood at the MAP estimate) is -ours.
    assert model.bic(X) == pytest.approx(-fit["bic"], rel=1e-6)
    np.testing.assert_allclose(model.weights_, array(fit["pro"]), rtol=rtol, atol=1e-6)
    means = array(fit["mean"]).reshape(d, G).T
    np.testing.assert_allclose(model.means_, means, atol=rtol * np.max(np.abs(X)))
    sigma = np.moveaxis(np.broadcast_to(array(fit["sigma"]).reshape(d, d, -1), (d, d, G)), -1, 0)
    np.testing.assert_allclose(full_covariances(model), sigma, atol=rtol * np.max(np.abs(sigma)))
    prior, expected = model.prior_, fit["prior"]
    assert prior.shrinkage == expected["shrinkage"]
    assert prior.dof == expected["dof"]
    np.testing.assert_allclose(prior.mean, array(expected["mean"]), rtol=1e-12)
    np.testing.assert_allclose(
        prior.scale, array(expected["scale"]).reshape(prior.scale.shape), rtol=1e-10
    )


def full_covariances(model: GaussianMixture) -> np.ndarray:
    """Every component's covariance as a (d, d) matrix, whatever the family's shape."""
    family = get_family(model.covariance_type)
    d = model.means_.shape[1]
    out = []
    for k in range(model.n_components):
        c = np.asarray(family.component_covariance(model.covariances_, k), dtype=float)
        out.append(c * np.eye(d) if c.ndim == 0 else np.diag(c) if c.ndim == 1 else c)
    return np.stack(out)


# ================================================================ against R
def test_reference_records_exactly_the_known_mclust_failures(reference):
    assert failed_cells(reference) == MCLUST_FAILURES
    assert reference["mclust_version"].startswith("6.")


def test_the_models_with_a_prior_are_mclusts(reference):
    fitted = {
        fit["model"] for data in reference["datasets"].values() for fit in data["cells"][0]["fits"]
    }
    assert fitted == set(MODELS_WITH_PRIOR)
    refused = {
        entry["model"]: entry["warning"] for entry in reference["datasets"]["iris"]["without_prior"]
    }
    assert set(refused) == set(MULTIVARIATE) - set(MODELS_WITH_PRIOR)
    assert all("not available with prior" in warning for warning in refused.values())


def selected_cells():
    if os.environ.get("GMM_MCLUST_ALL") == "1":
        return [
            (name, G)
            for name in ("faithful", "iris", "diabetes", "waiting")
            for G in (1, 2, 3, 5, 9)
        ]
    return CELLS


@pytest.mark.usefixtures("tight")
@pytest.mark.parametrize("name, G", selected_cells())
def test_map_fit_matches_mclust_me_with_prior(reference, datasets, name, G):
    for _, X, cell, fit in reference_fits(reference, datasets, [(name, G)]):
        rtol = FLAT.get((name, G, fit["model"]), 1e-4)
        compare_with_mclust(X, cell, fit, fit_like_mclust(X, cell, fit), rtol)


@pytest.mark.parametrize("twin, model", sorted(TWINS.items()))
def test_scikit_learn_names_take_their_mclust_twins_prior(reference, datasets, twin, model):
    cell = next(c for c in reference["datasets"]["faithful"]["cells"] if c["G"] == 2)
    fit = next(f for f in cell["fits"] if f["model"] == model)
    X = datasets["faithful"]
    compare_with_mclust(X, cell, fit, fit_like_mclust(X, cell, fit, covariance_type=twin))


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript (R with mclust) not installed")
@pytest.mark.usefixtures("tight")
def test_live_r_script_reproduces_the_reference(tmp_path, reference, datasets):
    out = tmp_path / "prior.json"
    run = subprocess.run(
        ["Rscript", str(SCRIPT), str(out), "faithful", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if run.returncode != 0 and "there is no package called" in run.stderr:
        pytest.skip(f"R lacks a package: {run.stderr.strip()[-200:]}")
    assert run.returncode == 0, run.stderr
    live = json.loads(out.read_text())
    cell = live["datasets"]["faithful"]["cells"][0]
    stored = next(c for c in reference["datasets"]["faithful"]["cells"] if c["G"] == 2)
    assert cell["classification"] == stored["classification"]
    for fit, kept in zip(cell["fits"], stored["fits"], strict=True):
        assert fit["loglik"] == pytest.approx(kept["loglik"], rel=1e-12)
        X = datasets["faithful"]
        compare_with_mclust(X, cell, fit, fit_like_mclust(X, cell, fit))


# ============================================================ default prior
@pytest.mark.parametrize("model", ["VVV", "EEE", "VII", "EEI", "V"])
def test_default_prior_is_mclusts_formula_on_numpys_moments(model):
    rng = np.random.default_rng(1)
    d = 1 if model == "V" else 3
    X = rng.normal(size=(50, d)) * np.arange(1, d + 1) + 5
    G = 4
    gm = GaussianMixture(G, covariance_type=model, prior="default", random_state=0).fit(X)
    covariance = np.atleast_2d(np.cov(X, rowvar=False))
    expected = covariance * G ** (-2 / d)
    if model not in ("VVV", "EEE"):
        expected = np.trace(expected) / d  # mclust: sum of variances / d, times G^(-2/d)
    np.testing.assert_allclose(gm.prior_.mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(gm.prior_.scale, expected, rtol=1e-10)
    assert (gm.prior_.shrinkage, gm.prior_.dof) == (0.01, d + 2)


def test_prior_with_weights_counts_the_rows_of_positive_weight():
    # Weights are relative (gmm.validation.relative_weights): the prior sees as many
    # observations as rows of positive weight, whatever the weights' scale. So 0/1
    # weights give the fit of the kept rows, times any factor.
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(0, 1, (30, 2)), rng.normal(4, 1, (30, 2))])
    keep = rng.integers(0, 2, size=60).astype(bool)
    labels = (np.arange(60) >= 30).astype(int)
    settings_ = dict(covariance_type="VVV", prior="default", reg_covar=0, tol=1e-10, max_iter=500)
    subset = GaussianMixture(
        2, init_params=lambda X, k, rs: np.eye(2)[labels[keep]], **settings_
    ).fit(X[keep])
    for factor in (1e-300, 1.0, 1e300):
        weighted = GaussianMixture(
            2, init_params=lambda X, k, rs: np.eye(2)[labels], **settings_
        ).fit(X, sample_weight=keep * factor)
        np.testing.assert_allclose(weighted.prior_.scale, subset.prior_.scale, rtol=1e-10)
        np.testing.assert_allclose(weighted.means_, subset.means_, rtol=1e-8)
        np.testing.assert_allclose(weighted.covariances_, subset.covariances_, rtol=1e-8)


def test_a_dict_of_the_default_values_gives_the_default_fit():
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0, 1, (40, 2)), rng.normal(5, 1, (40, 2))])
    default = GaussianMixture(2, covariance_type="EEV", prior="default", random_state=0).fit(X)
    given_ = GaussianMixture(
        2, covariance_type="EEV", prior=default.prior_.as_dict(), random_state=0
    ).fit(X)
    np.testing.assert_array_equal(given_.covariances_, default.covariances_)
    # A stronger prior pulls the means toward its mean.
    strong = GaussianMixture(
        2, covariance_type="EEV", prior={"shrinkage": 1000.0}, random_state=0
    ).fit(X)
    assert np.ptp(strong.means_[:, 0]) < np.ptp(default.means_[:, 0])


# ========================================================= what it prevents
def collapsing_data():
    """Two blobs and three identical rows: mclust's partition gives them a component."""
    rng = np.random.default_rng(0)
    X = np.vstack(
        [rng.normal(0, 1, (40, 2)), rng.normal(6, 1, (40, 2)), np.tile([3.0, 20.0], (3, 1))]
    )
    labels = np.r_[np.zeros(40, int), np.ones(40, int), np.full(3, 2)]
    return X, labels


@pytest.mark.parametrize("covariance_type", ["VVV", "full", "VVI", "V-like"])
def test_prior_keeps_a_collapsing_component_positive_definite(covariance_type):
    X, labels = collapsing_data()
    if covariance_type == "V-like":  # one feature: mclust's 'V'
        X, covariance_type = X[:, 1:], "V"
    init = lambda X, k, rs: np.eye(3)[labels]  # noqa: E731
    plain = GaussianMixture(3, covariance_type=covariance_type, init_params=init, reg_covar=0)
    try:  # the maximum-likelihood fit collapses: an error, or a variance at rounding level
        plain.fit(X)
    except CollapsedComponentError as error:
        assert "component 2" in str(error)
    else:
        assert np.linalg.eigvalsh(full_covariances(plain)[2]).min() < 1e-10 * np.var(X)
    gm = GaussianMixture(
        3, covariance_type=covariance_type, init_params=init, reg_covar=0, prior="default"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm.fit(X)
    assert gm.converged_
    full = full_covariances(gm)
    assert np.all(np.isfinite(full)) and np.all(np.linalg.eigvalsh(full) > 0)
    assert np.isfinite(gm.score(X)) and gm.weights_[2] == pytest.approx(3 / 83, rel=1e-3)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 6),
    d=st.integers(1, 4),
    model=st.sampled_from(["VVV", "EEE", "EEV", "VEV", "VVI", "EEI", "EVI", "VEI", "VII"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_map_covariances_are_positive_definite_for_any_scatter(n, d, model, seed):
    """However few rows a component has (even one, even rank-deficient), T_k is PD."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, 1)) * rng.normal(size=(1, d))  # rank <= 1
    family = get_family(model)
    kind = family.scatter_kind
    centred = rows - rows.mean(axis=0)
    scatter_full = centred.T @ centred / n
    nk = np.array([float(n), 50.0])
    means = np.vstack([rows.mean(axis=0), np.zeros(d)])
    fulls = np.stack([scatter_full, np.eye(d)])
    covariances = {
        "full": fulls,
        "diagonal": np.stack([np.diag(f) for f in fulls]),
        "pooled": (fulls * nk[:, None, None]).sum(axis=0) / nk.sum(),
    }[kind]
    prior = default_prior(np.zeros(d), np.eye(d), 2, model)
    posterior = posterior_scatter(Scatter(nk, means, covariances, kind), prior, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # inner iteration caps are not the point here
        result, _ = family.estimate(posterior, 0.0, None)
    assert np.all(np.linalg.eigvalsh(result) > 0)


# =============================================================== bad input
@pytest.fixture()
def fitted():
    rng = np.random.default_rng(4)
    X = np.vstack([rng.normal(0, 1, (30, 2)), rng.normal(5, 1, (30, 2))])
    return X, GaussianMixture(2, covariance_type="VVV", random_state=0).fit(X)


def assert_unchanged_after(gm, X, error, match):
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(gm).items()}
    with pytest.raises(error, match=match):
        gm.fit(X)
    after = vars(gm)
    assert set(after) == set(before)
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value)


@pytest.mark.parametrize("model", ["VEE", "EVE", "VVE", "EVV"])
def test_a_model_without_a_prior_is_refused_naming_those_with_one(fitted, model):
    X, gm = fitted
    gm.set_params(covariance_type=model, prior="default")
    assert_unchanged_after(gm, X, ValueError, f"{model}'? cannot take a prior.*EII, VII.*VVV")


@pytest.mark.parametrize(
    "prior, match",
    [
        ("mclust", "prior must be None, 'default' or a dict"),
        ({"shrink": 0.1}, "unknown key.*shrink.*shrinkage, mean, dof, scale"),
        ({"mean": [0.0, 0.0, 0.0]}, r"prior\['mean'\] must have shape \(2,\)"),
        ({"scale": np.eye(3)}, r"prior\['scale'\] must have shape \(2, 2\)"),
        ({"scale": -np.eye(2)}, "symmetric positive definite"),
        ({"scale": [[1.0, 2.0], [2.0, 1.0]]}, "symmetric positive definite"),
        ({"dof": 0}, r"prior\['dof'\] must be a finite number > 0"),
        ({"shrinkage": -1.0}, r"prior\['shrinkage'\] must be a finite number >= 0"),
        ({"mean": [np.nan, 0.0]}, "must be finite"),
        (3, "prior must be None"),
    ],
)
def test_bad_prior_is_a_clear_error_before_any_state_changes(fitted, prior, match):
    X, gm = fitted
    gm.set_params(prior=prior)
    assert_unchanged_after(gm, X, ValueError, match)


def test_a_number_scale_for_an_axis_aligned_model(fitted):
    X, gm = fitted
    gm.set_params(covariance_type="VII", prior={"scale": [1.0, 1.0]})
    assert_unchanged_after(gm, X, ValueError, r"prior\['scale'\] must have shape \(\) \(a number\)")
    gm.set_params(prior={"scale": 0.0})
    assert_unchanged_after(gm, X, ValueError, r"prior\['scale'\] for model VII must be > 0")


def test_partial_fit_with_a_prior_is_not_implemented(fitted):
    X, gm = fitted
    means = gm.means_.copy()
    with pytest.raises(NotImplementedError, match="partial_fit does not take a prior"):
        gm.set_params(prior="default").partial_fit(X)
    np.testing.assert_array_equal(gm.means_, means)
    assert not hasattr(gm, "n_batches_seen_")


# ================================================================= in use
@pytest.mark.parametrize("prior", ["default", {"shrinkage": 0.5, "scale": np.eye(2) * 0.5}])
def test_saved_model_with_a_prior_loads_and_predicts_identically(tmp_path, fitted, prior):
    X, _ = fitted
    gm = GaussianMixture(2, covariance_type="EEV", prior=prior, random_state=0).fit(X)
    save(gm, tmp_path / "model.gmm")
    loaded = load(tmp_path / "model.gmm")
    np.testing.assert_array_equal(loaded.predict_proba(X), gm.predict_proba(X))
    np.testing.assert_array_equal(loaded.score_samples(X), gm.score_samples(X))
    assert loaded.bic(X) == gm.bic(X)
    if isinstance(prior, dict):
        np.testing.assert_array_equal(loaded.prior["scale"], prior["scale"])
        assert loaded.prior["shrinkage"] == prior["shrinkage"]
    else:
        assert loaded.prior == "default"
    refit = loaded.fit(X)  # the stored constructor parameters refit the same model
    np.testing.assert_allclose(refit.covariances_, gm.covariances_, rtol=1e-12)


def test_float32_stays_float32_and_refit_without_prior_drops_prior_(fitted):
    X, _ = fitted
    gm = GaussianMixture(2, covariance_type="VVV", prior="default", random_state=0)
    gm.fit(X.astype(np.float32))
    assert gm.means_.dtype == np.float32 and gm.covariances_.dtype == np.float32
    assert hasattr(gm, "prior_")
    gm.set_params(prior=None).fit(X)
    assert not hasattr(gm, "prior_")


def test_sweep_passes_the_prior_through_as_mclustbic_with_prior(reference, datasets):
    """``sweep(X, covariance_types='mclust', prior='default')``: mclustBIC with a prior.

    From mclust's hc start (the 'mclust' sweep's default, checked against R in
    test_hierarchical), each cell is the reference's ``bic`` of me() with
    ``priorControl()`` (sign converted); the models mclust has no prior for
    are failed rows (mclust's NA) that say which models take one.
    """
    X = datasets["faithful"]
    expected = {
        (cell["G"], fit["model"]): fit["bic"]
        for cell in reference["datasets"]["faithful"]["cells"]
        for fit in cell["fits"]
        if fit["ok"]
    }
    with pytest.warns(UserWarning, match="8 of 28 fits failed"):
        result = sweep(
            X, [2, 3], "mclust", prior="default", tol=1e-11, max_iter=10_000, progress=False
        )
    for row in result.table:
        k, name = row["n_components"], row["covariance_type"]
        if name in MODELS_WITH_PRIOR:
            assert row["bic"] == pytest.approx(-expected[(k, name)], rel=1e-6), (k, name)
        else:
            assert "cannot take a prior" in row["error"], (k, name)
    assert result.best_estimator_.prior_.dof == 4.0


def test_command_line_fit_with_the_default_prior(tmp_path, capsys, fitted):
    X, _ = fitted
    data, out = tmp_path / "data.npy", tmp_path / "model.gmm"
    np.save(data, X)
    status = main(["fit", str(data), "--k", "2", "--covariance", "VEV", "--prior", "default",
                   "--out", str(out)])  # fmt: skip
    assert status == 0
    model = load(out)
    expected = GaussianMixture(2, covariance_type="VEV", prior="default", random_state=0).fit(X)
    assert model.prior == "default"
    np.testing.assert_allclose(model.covariances_, expected.covariances_, rtol=1e-10)
    assert main(["fit", str(data), "--k", "2", "--covariance", "EVE", "--prior", "default"]) == 1
    assert "cannot take a prior" in capsys.readouterr().err
    assert main(["fit", str(data), "--k", "2", "--prior", "default", "--online"]) == 1
    assert "--prior goes with batch EM" in capsys.readouterr().err


def test_one_row_of_positive_weight_cannot_give_the_default_prior(fitted):
    X, gm = fitted
    one_row = np.zeros(len(X))
    one_row[0] = 1.0 / len(X)
    # 'full' (no row check): the prior's own guard. 'VVV' (the same model): the
    # mclust row check, which fit runs on the data first, refuses the one row.
    for name, match in [
        ("full", "1 row or less of positive sample_weight"),
        ("VVV", r"Too few rows.*'VVV'.*11 free parameters.*weigh 1 rows"),
    ]:
        gm.set_params(prior="default", covariance_type=name)
        before = gm.means_.copy()
        with pytest.raises(ValueError, match=match):
            gm.fit(X, sample_weight=one_row)
        np.testing.assert_array_equal(gm.means_, before)


def test_memmap_and_dask_data_give_the_in_memory_prior_and_fit(tmp_path, fitted):
    X, _ = fitted
    np.save(tmp_path / "x.npy", X)
    sources = [np.load(tmp_path / "x.npy", mmap_mode="r")]
    try:  # dask is optional (pip install "gmm[dask]")
        import dask.array as da
    except ImportError:
        da = None
    if da is not None:
        sources.append(da.from_array(X, chunks=20))
    expected = GaussianMixture(2, covariance_type="EEV", prior="default", random_state=0).fit(X)
    for source in sources:
        gm = GaussianMixture(2, covariance_type="EEV", prior="default", random_state=0).fit(source)
        np.testing.assert_allclose(gm.prior_.scale, expected.prior_.scale, rtol=1e-10)
        np.testing.assert_allclose(gm.covariances_, expected.covariances_, rtol=1e-6)


def test_selection_with_a_prior_is_the_sweep_with_that_prior(tmp_path):
    """GaussianMixtureIC(prior=...) passes the prior to every fit: its table is the
    sweep's with the prior (and not the sweep's without), and it saves and loads."""
    from gmm import GaussianMixtureIC, load, save, sweep

    X = np.random.default_rng(3).normal(size=(150, 2)) + np.repeat([[0, 0], [5, 1], [1, 6]], 50, 0)
    grid = dict(n_components=range(1, 4), covariance_type=["VVV", "EEE"], random_state=0)
    ic = GaussianMixtureIC(prior="default", **grid).fit(X)
    with_prior = sweep(X, range(1, 4), ["VVV", "EEE"], prior="default", random_state=0,
                       progress=False)  # fmt: skip
    without = sweep(X, range(1, 4), ["VVV", "EEE"], random_state=0, progress=False)
    ours = [row["log_likelihood"] for row in ic.table_.to_records()]
    assert ours == [row["log_likelihood"] for row in with_prior.table.to_records()]
    assert ours != [row["log_likelihood"] for row in without.table.to_records()]
    assert ic.best_params_ == with_prior.best_params_
    assert ic.best_estimator_.prior_ is not None
    save(ic, tmp_path / "ic.npz")
    loaded = load(tmp_path / "ic.npz")
    assert loaded.prior == "default"
    np.testing.assert_array_equal(loaded.predict_proba(X), ic.predict_proba(X))


def test_a_prior_with_rows_to_marginalize_is_refused_clearly_and_omit_works():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(200, 3))
    X[rng.random(X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    fitted = GaussianMixture(2, random_state=0).fit(np.nan_to_num(X))
    before = {n: getattr(fitted, n).copy() for n in ("weights_", "means_", "covariances_")}
    fitted.set_params(nan_policy="marginalize", prior="default")
    with pytest.raises(NotImplementedError, match="prior= does not take rows with missing"):
        fitted.fit(X)
    assert all(np.array_equal(getattr(fitted, n), v) for n, v in before.items())
    omitted = GaussianMixture(2, nan_policy="omit", prior="default", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        omitted.fit(X)
    complete = X[~np.isnan(X).any(axis=1)]
    plain = GaussianMixture(2, prior="default", random_state=0).fit(complete)
    np.testing.assert_array_equal(omitted.means_, plain.means_)
