"""gmm.sweep and GaussianMixtureIC.

References: scikit-learn's GaussianMixture fitted in the same process with the
same arguments (its ``aic``, ``bic``, ``score``, ``predict_proba`` and
``_n_parameters``), and data with rows repeated for the sample-weight
semantics. No expected number comes from our own runs.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import warnings

import numpy as np
import pytest
from scipy.special import xlogy
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_info, threadpool_limits

from gmm import GaussianMixture, GaussianMixtureIC, SweepResult, sweep
from gmm.selection import COLUMNS
from gmm.selection.parallel import blas_threads as _blas_threads

TYPES = ("spherical", "diag", "full", "tied")


def sklearn_reference(X, k, covariance_type, **params):
    """scikit-learn's fit and criteria for one grid point (ICL from its responsibilities)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkGaussianMixture(k, covariance_type=covariance_type, **params).fit(X)
    resp = ref.predict_proba(X)
    bic = ref.bic(X)
    return {
        "log_likelihood": ref.score(X) * X.shape[0],
        "n_parameters": ref._n_parameters(),
        "aic": ref.aic(X),
        "bic": bic,
        "icl": bic - 2 * np.sum(xlogy(resp, resp)),
        "n_iter": ref.n_iter_,
        "converged": ref.converged_,
    }


def assert_rows_match_sklearn(result, X, rtol=1e-6, **params):
    for row in result.table:
        assert row["error"] is None
        ref = sklearn_reference(X, row["n_components"], row["covariance_type"], **params)
        for key in ("log_likelihood", "aic", "bic", "icl"):
            np.testing.assert_allclose(row[key], ref[key], rtol=rtol, err_msg=f"{key} {row}")
        assert row["n_parameters"] == ref["n_parameters"]
        assert row["n_iter"] == ref["n_iter"]
        assert row["converged"] == ref["converged"]


def without_seconds(table):
    return [{k: v for k, v in row.items() if k != "fit_seconds"} for row in table]


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(150, centers=3, cluster_std=0.8, random_state=1)
    return X


@pytest.fixture(scope="module")
def blob_sweep(blobs):
    return sweep(blobs, range(1, 5), TYPES, progress=False)


# ---------------------------------------------------------- against sklearn
# One BLAS thread in the agreement tests: OpenBLAS threads only slow down these
# small products on a busy 2-core machine, and the numbers do not depend on it.
def test_moons_sweep_matches_sklearn(moons):
    # The tutorial's grid: make_moons(200, noise=0.05), K = 1..20, full.
    with threadpool_limits(1):
        result = sweep(moons, range(1, 21), "full", progress=False)
        assert [row["n_components"] for row in result.table] == list(range(1, 21))
        assert_rows_match_sklearn(result, moons, random_state=0)


def test_moons_sweep_matches_sklearn_for_every_type(moons):
    with threadpool_limits(1):
        result = sweep(moons, range(1, 7), TYPES, n_init=2, random_state=3, progress=False)
        assert [row["covariance_type"] for row in result.table[::6]] == list(TYPES)
        assert_rows_match_sklearn(result, moons, random_state=3, n_init=2)


@pytest.mark.slow
def test_digits_sweep_matches_sklearn(digits_pca):
    # The tutorial's AIC curve: K = 50..200 step 10, full, on 1797 × 41 whitened PCA scores.
    with threadpool_limits(1):
        result = sweep(digits_pca, range(50, 201, 10), "full", progress=False)
        for row in result.table:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                ref = SkGaussianMixture(
                    row["n_components"], covariance_type="full", random_state=0
                ).fit(digits_pca)
            np.testing.assert_allclose(row["aic"], ref.aic(digits_pca), rtol=1e-6)
            np.testing.assert_allclose(row["bic"], ref.bic(digits_pca), rtol=1e-6)
    assert len(result.table) == 16


def test_row_equals_a_direct_fit(blobs):
    params = dict(tol=1e-4, max_iter=40, init_params="random_from_data", reg_covar=1e-5)
    result = sweep(blobs, [2, 3, 4], "tied", n_init=2, random_state=7, progress=False, **params)
    k = result.best_params_["n_components"]
    direct = GaussianMixture(k, covariance_type="tied", n_init=2, random_state=7, **params)
    direct.fit(blobs)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.array_equal(getattr(result.best_estimator_, name), getattr(direct, name))
    assert result.best_estimator_.get_params() == direct.get_params()
    row = result.table[result.best_index_]
    assert row["n_iter"] == direct.n_iter_
    assert math.isclose(row["bic"], direct.bic(blobs), rel_tol=1e-12)


# ----------------------------------------------------------------- behaviour
def test_best_is_the_minimum_of_each_criterion(blobs, blob_sweep):
    table = blob_sweep.table
    for criterion in ("aic", "bic", "icl"):
        result = SweepResult(table, criterion, blob_sweep.best_estimator_)
        values = table.column(criterion)
        assert result.best_score_ == values.min()
        best = table[int(np.argmin(values))]
        assert result.best_params_ == {
            "n_components": best["n_components"],
            "covariance_type": best["covariance_type"],
        }
    # The defining relations of the three criteria.
    n = blobs.shape[0]
    for row in table:
        p = row["n_parameters"]
        assert math.isclose(row["aic"], -2 * row["log_likelihood"] + 2 * p, rel_tol=1e-12)
        assert math.isclose(row["bic"], row["aic"] + p * (math.log(n) - 2), rel_tol=1e-12)
        assert row["icl"] >= row["bic"] - 1e-9
    # Three well-separated blobs: every criterion finds them.
    assert blob_sweep.best_params_["n_components"] == 3


def test_sweep_best_estimator_is_the_best_row(blobs, blob_sweep):
    model = blob_sweep.best_estimator_
    row = blob_sweep.table[blob_sweep.best_index_]
    assert (model.n_components, model.covariance_type) == (
        row["n_components"],
        row["covariance_type"],
    )
    assert math.isclose(model.bic(blobs), row["bic"], rel_tol=1e-10)


def test_sample_weight_acts_as_repeated_rows(blobs):
    counts = np.random.default_rng(0).integers(1, 4, size=blobs.shape[0])
    repeated = np.repeat(blobs, counts, axis=0)
    for covariance_type in ("full", "diag"):
        result = sweep(
            blobs, [3], covariance_type, sample_weight=counts.astype(float), progress=False
        )
        row, model = result.table[0], result.best_estimator_
        assert math.isclose(
            row["log_likelihood"], model.score(repeated) * len(repeated), rel_tol=1e-10
        )
        assert math.isclose(row["aic"], model.aic(repeated), rel_tol=1e-10)
        assert math.isclose(row["bic"], model.bic(repeated), rel_tol=1e-10)
        assert math.isclose(row["icl"], model.icl(repeated), rel_tol=1e-10)


def test_failed_fit_becomes_a_row_and_the_sweep_goes_on():
    # Six distinct points, each repeated: with K=6 and no regularisation every
    # component collapses onto one point.
    points = np.random.default_rng(1).normal(size=(6, 2))
    X = np.repeat(points, 5, axis=0)
    with pytest.warns(UserWarning, match="1 of 2 fits failed"):
        result = sweep(X, [1, 6], "full", reg_covar=0.0, progress=False)
    ok, failed = result.table
    assert ok["error"] is None and math.isfinite(ok["bic"])
    assert "collapsed" in failed["error"] or "positive definite" in failed["error"]
    assert math.isnan(failed["bic"]) and failed["n_iter"] is None and not failed["converged"]
    assert result.best_params_["n_components"] == 1


def test_all_fits_failing_raises():
    X = np.repeat(np.random.default_rng(2).normal(size=(4, 2)), 3, axis=0)
    with pytest.raises(ValueError, match="All 2 fits of the sweep failed"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            sweep(X, [4, 5], "full", reg_covar=0.0, progress=False)


@pytest.mark.parametrize("workers", ["fork", "joblib"])
def test_n_jobs_gives_identical_tables(moons, workers, monkeypatch):
    from gmm.selection import parallel

    chosen = []
    choose = parallel.backend
    monkeypatch.setattr(parallel, "WORTH_FORKING", 0.0)  # fork even for this small grid
    monkeypatch.setattr(
        parallel,
        "backend",
        lambda n, tasks: chosen.append(workers) or workers if n > 1 else choose(n, tasks),
    )
    grid = dict(n_components=range(1, 7), covariance_types=TYPES, progress=False)
    serial = sweep(moons, n_jobs=1, **grid)
    parallel = sweep(moons, n_jobs=2, **grid)
    assert without_seconds(serial.table) == without_seconds(parallel.table)
    assert serial.best_params_ == parallel.best_params_
    for name in ("weights_", "means_", "precisions_cholesky_"):
        assert np.array_equal(
            getattr(serial.best_estimator_, name), getattr(parallel.best_estimator_, name)
        )


def test_blas_threads_limited_in_workers():
    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    with _blas_threads(1):
        assert all(n == 1 for n in blas_threads())


def test_float32_data_gives_float32_models(blobs):
    result = sweep(blobs.astype(np.float32), [2, 3], "diag", progress=False)
    assert result.best_estimator_.means_.dtype == np.float32
    assert all(isinstance(row["bic"], float) for row in result.table)


def test_dataframe_column_names_reach_the_models(blobs):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(blobs, columns=["x", "y"])
    result = sweep(frame, [3], "full", progress=False)
    assert list(result.best_estimator_.feature_names_in_) == ["x", "y"]


# --------------------------------------------------------------- the table
def test_table_rows_and_columns(blob_sweep):
    table = blob_sweep.table
    assert len(table) == 16 and table.columns == COLUMNS
    assert list(table[0]) == list(COLUMNS)
    table[0]["bic"] = 0.0  # indexing returns a copy
    assert table[0]["bic"] != 0.0
    assert [row["covariance_type"] for row in table[:4]] == ["spherical"] * 4
    assert table.column("n_components").tolist() == [1.0, 2.0, 3.0, 4.0] * 4


def test_to_records_and_to_pandas(blob_sweep):
    pd = pytest.importorskip("pandas")
    records = blob_sweep.to_records()
    assert records == blob_sweep.table.to_records() == list(blob_sweep.table)
    frame = blob_sweep.to_pandas()
    assert list(frame.columns) == list(COLUMNS)
    assert str(frame["n_iter"].dtype) == "Int64"
    assert frame["bic"].tolist() == [row["bic"] for row in records]
    assert isinstance(frame, pd.DataFrame)


def test_to_csv_reads_back_exactly(tmp_path, blob_sweep):
    path = tmp_path / "table.csv"
    blob_sweep.to_csv(path)
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == list(COLUMNS)
    for row, original in zip(rows, blob_sweep.table, strict=True):
        assert row["covariance_type"] == original["covariance_type"]
        assert float(row["bic"]) == original["bic"]
        assert int(row["n_iter"]) == original["n_iter"]
        assert row["error"] == ""


def test_to_pandas_without_pandas_says_what_to_install(monkeypatch, blob_sweep):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        blob_sweep.to_pandas()


def test_plot_marks_the_best(blob_sweep):
    from matplotlib.figure import Figure

    for criterion in ("bic", "aic"):
        ax = blob_sweep.plot(criterion, ax=Figure().subplots())
        lines = ax.get_lines()
        assert [line.get_label() for line in lines[:4]] == list(TYPES)
        best = SweepResult(blob_sweep.table, criterion, blob_sweep.best_estimator_)
        star = lines[-1]
        assert star.get_xdata()[0] == best.best_params_["n_components"]
        assert star.get_ydata()[0] == best.best_score_
        assert criterion.upper() in ax.get_ylabel()


def test_plot_without_matplotlib_says_what_to_install(monkeypatch, blob_sweep):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "gmm\[plot\]"'):
        blob_sweep.plot()


# ------------------------------------------------------------------ progress
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_shows_each_fit(monkeypatch, blobs):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    sweep(blobs, [1, 2], "full", criterion="aic", progress=None)
    output = terminal.getvalue()
    # Fits run largest first, so K=1 finishes last and stays on the final bar.
    assert "2/2" in output and "K=1 full aic=" in output


def test_progress_is_off_when_not_a_terminal(monkeypatch, blobs):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    sweep(blobs, [1, 2], "full", progress=None)
    assert stream.getvalue() == ""


# ------------------------------------------------------------------ arguments
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(criterion="aicc"), ValueError, "Unknown criterion 'aicc'"),
        (dict(n_components=[]), ValueError, "n_components is empty"),
        (dict(n_components=[0, 1]), ValueError, "must be >= 1"),
        (dict(n_components=2.5), TypeError, "int or an iterable"),
        (dict(covariance_types=["full", "round"]), ValueError, "Unknown covariance_type"),
        (dict(covariance_type="full"), TypeError, "set by the sweep itself"),
        (dict(tolerance=1e-3), TypeError, "Unknown GaussianMixture parameter 'tolerance'"),
        (dict(tol=-1.0), ValueError, "tol must be"),
        (dict(n_jobs=0), ValueError, "n_jobs must be"),
        (dict(random_state=None, checkpoint="x.jsonl"), ValueError, "integer random_state"),
    ],
)
def test_bad_arguments_are_refused_up_front(blobs, kwargs, error, match):
    with pytest.raises(error, match=match):
        sweep(blobs, **{"n_components": [1, 2], "progress": False, **kwargs})


def test_bad_data_is_refused(blobs):
    X = blobs.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sweep(X, [1, 2], progress=False)
    with pytest.raises(ValueError, match="sample_weight"):
        sweep(blobs, [1, 2], sample_weight=np.ones(3), progress=False)


# ================================================================ estimator
@parametrize_with_checks([GaussianMixtureIC(n_components=(1, 2), covariance_type=("full", "diag"))])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        # Tiny check data makes some grid points fail; the sweep says so and goes on.
        warnings.filterwarnings("ignore", message=".* fits failed", category=UserWarning)
        check(estimator)


def test_constructor_stores_n_components_as_given():
    grid = range(1, 6)
    model = GaussianMixtureIC(grid)
    assert model.get_params()["n_components"] is grid
    assert clone(model).n_components == grid


def test_estimator_delegates_to_the_best_model(blobs):
    model = GaussianMixtureIC(range(1, 5), covariance_type=["full", "diag"], random_state=0)
    model.fit(blobs)
    best = model.best_estimator_
    assert (model.n_components_, model.covariance_type_) == (
        best.n_components,
        best.covariance_type,
    )
    assert model.best_params_ == model.sweep_result_.best_params_
    assert len(model.table_) == 8
    assert np.array_equal(model.predict(blobs), best.predict(blobs))
    assert np.array_equal(model.predict_proba(blobs), best.predict_proba(blobs))
    assert np.array_equal(model.score_samples(blobs), best.score_samples(blobs))
    assert model.score(blobs) == best.score(blobs)
    assert model.bic(blobs) == best.bic(blobs)
    X1, y1 = model.sample(5, random_state=0)
    X2, y2 = best.sample(5, random_state=0)
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert np.array_equal(model.fit_predict(blobs), model.predict(blobs))


def test_estimator_equals_the_sweep(blobs):
    model = GaussianMixtureIC([2, 3], covariance_type="tied", criterion="icl", random_state=4)
    result = sweep(blobs, [2, 3], "tied", criterion="icl", random_state=4, progress=False)
    model.fit(blobs)
    assert without_seconds(model.table_) == without_seconds(result.table)
    assert model.best_params_ == result.best_params_


def test_estimator_in_a_pipeline(blobs):
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("gmm", GaussianMixtureIC(range(1, 5), covariance_type="full", random_state=0)),
        ]
    ).fit(blobs)
    scaled = StandardScaler().fit_transform(blobs)
    direct = GaussianMixtureIC(range(1, 5), covariance_type="full", random_state=0).fit(scaled)
    assert np.array_equal(pipe.predict(blobs), direct.predict(scaled))
    assert pipe.score(blobs) == direct.score(scaled)


# ------------------------------------------------------------- data sources
# Reference: the same sweep on the in-memory array. Memory maps and dask arrays
# must give its table, without being brought into memory whole.
NUMERIC = ("log_likelihood", "n_parameters", "aic", "bic", "icl")
SOURCE_GRID = dict(n_components=[1, 2, 3], covariance_types=["full", "diag"], progress=False)


def source(kind, X, tmp_path):
    if kind == "memmap":
        np.save(tmp_path / "X.npy", X)
        return np.load(tmp_path / "X.npy", mmap_mode="r")
    da = pytest.importorskip("dask.array")
    return da.from_array(X, chunks=40)


def assert_same_table(table, reference, rtol):
    assert len(table) == len(reference)
    for row, ref in zip(table, reference, strict=True):
        assert row["error"] is None and ref["error"] is None
        for key in ("n_components", "covariance_type", "converged", "n_iter"):
            assert row[key] == ref[key]
        for key in NUMERIC:
            np.testing.assert_allclose(row[key], ref[key], rtol=rtol, err_msg=f"{key} {row}")


@pytest.mark.parametrize("kind", ["memmap", "dask"])
@pytest.mark.parametrize("weighted", [False, True])
def test_sweep_on_a_memory_map_or_dask_array_gives_the_in_memory_table(
    tmp_path, blobs, kind, weighted
):
    w = np.random.default_rng(0).integers(1, 4, len(blobs)) if weighted else None
    reference = sweep(blobs, sample_weight=w, **SOURCE_GRID)
    result = sweep(source(kind, blobs, tmp_path), sample_weight=w, **SOURCE_GRID)
    assert_same_table(result.table, reference.table, rtol=1e-9)
    assert result.best_params_ == reference.best_params_


def test_memory_map_goes_to_the_fits_as_it_is_and_is_scored_in_blocks(tmp_path, monkeypatch):
    from gmm.scale import files, rows

    blobs, _ = make_blobs(600, centers=3, cluster_std=0.8, random_state=1)
    mapped = source("memmap", blobs, tmp_path)
    fitted_on, scored_rows = [], []
    real_fit, real_apply = GaussianMixture.fit, rows.apply

    def spy_fit(self, X, *args, **kwargs):
        fitted_on.append(X)
        return real_fit(self, X, *args, **kwargs)

    def spy_apply(X, *args, **kwargs):
        scored_rows.append(len(X))
        return real_apply(X, *args, **kwargs)

    monkeypatch.setattr(GaussianMixture, "fit", spy_fit)
    monkeypatch.setattr(rows, "apply", spy_apply)
    # The criteria read the file in blocks of 256 rows (the smallest chunk).
    monkeypatch.setattr(files, "BLOCK_BYTES", 1)
    result = sweep(mapped, **SOURCE_GRID)
    monkeypatch.undo()
    assert fitted_on and all(X is mapped for X in fitted_on)
    assert scored_rows and max(scored_rows) <= 256 < len(blobs)
    assert_same_table(result.table, sweep(blobs, **SOURCE_GRID).table, rtol=1e-9)


@pytest.mark.parametrize("kind", ["memmap", "dask"])
def test_checkpoint_of_the_array_is_reused_for_its_memory_map_or_dask_array(
    tmp_path, blobs, monkeypatch, kind
):
    from gmm.selection import search

    path = tmp_path / "sweep.jsonl"
    first = sweep(blobs, checkpoint=path, **SOURCE_GRID)
    calls = []
    real = search.fit_point

    def counting(*args, **kwargs):
        calls.append(args[2:4])
        return real(*args, **kwargs)

    monkeypatch.setattr(search, "fit_point", counting)
    second = sweep(source(kind, blobs, tmp_path), checkpoint=path, **SOURCE_GRID)
    # Same data, same fingerprint: only the best model is refitted.
    assert calls == [tuple(first.best_params_.values())]
    assert second.table.to_records() == first.table.to_records()


@pytest.mark.parametrize("kind", ["memmap", "dask"])
def test_estimator_fits_and_predicts_memory_maps_and_dask_arrays(tmp_path, blobs, kind):
    params = dict(covariance_type=["full", "diag"], random_state=0)
    reference = GaussianMixtureIC([1, 2, 3], **params).fit(blobs)
    data = source(kind, blobs, tmp_path)
    model = GaussianMixtureIC([1, 2, 3], **params).fit(data)
    assert model.best_params_ == reference.best_params_
    assert model.n_features_in_ == reference.n_features_in_
    assert_same_table(model.table_, reference.table_, rtol=1e-9)
    labels = model.predict(data)
    labels = labels.compute() if hasattr(labels, "compute") else labels
    assert np.array_equal(labels, reference.predict(blobs))
    np.testing.assert_allclose(
        np.asarray(model.score_samples(data)), reference.score_samples(blobs), rtol=1e-9
    )


# --------------------------------------------------------------- from_sweep
def test_from_sweep_equals_fit(blobs):
    params = dict(n_components=[1, 2, 3], covariance_type="full", random_state=0)
    fitted = GaussianMixtureIC(**params).fit(blobs)
    result = sweep(blobs, [1, 2, 3], "full", random_state=0, progress=False)
    built = GaussianMixtureIC.from_sweep(result, **params)
    assert built.get_params() == fitted.get_params()
    assert built.best_params_ == fitted.best_params_
    assert (built.n_components_, built.covariance_type_) == (
        fitted.n_components_,
        fitted.covariance_type_,
    )
    assert built.n_features_in_ == fitted.n_features_in_
    assert without_seconds(built.table_) == without_seconds(fitted.table_)
    assert np.array_equal(built.predict_proba(blobs), fitted.predict_proba(blobs))
    assert built.sweep_result_ is result and built.best_estimator_ is result.best_estimator_


def test_from_sweep_takes_feature_names(blobs):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(blobs, columns=["a", "b"])
    result = sweep(blobs, [1, 2], "diag", progress=False)
    named = GaussianMixtureIC.from_sweep(result, feature_names_in=["a", "b"])
    assert list(named.feature_names_in_) == list(
        GaussianMixtureIC([1, 2]).fit(frame).feature_names_in_
    )
    from_frame = GaussianMixtureIC.from_sweep(sweep(frame, [1, 2], "diag", progress=False))
    assert list(from_frame.feature_names_in_) == ["a", "b"]
    assert not hasattr(GaussianMixtureIC.from_sweep(result), "feature_names_in_")
    assert named.criterion == result.criterion


def test_from_sweep_refuses_bad_input(blobs, blob_sweep):
    with pytest.raises(TypeError, match="needs a SweepResult"):
        GaussianMixtureIC.from_sweep(blob_sweep.table)
    with pytest.raises(ValueError, match="1 name"):
        GaussianMixtureIC.from_sweep(blob_sweep, feature_names_in=["a"])
    with pytest.raises(TypeError, match="unexpected keyword"):
        GaussianMixtureIC.from_sweep(blob_sweep, colour="red")


# ======================================================= grid sizes (issue 17, class 7)
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_model_bytes_covers_a_fitted_models_arrays_and_responsibilities(covariance_type):
    """The memory estimate is at least what a fit holds: the fitted arrays (numpy's
    nbytes) and one (n, K) float64 responsibility matrix; at most twice that."""
    from gmm.selection.search import model_bytes

    X, _ = make_blobs(120, n_features=4, centers=3, random_state=0)
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    held = (
        sum(
            getattr(model, name).nbytes
            for name in ("means_", "covariances_", "precisions_", "precisions_cholesky_")
        )
        + model.predict_proba(X).nbytes
    )
    estimate = model_bytes(3, 120, 4, covariance_type, np.float64)
    assert held <= estimate <= 2 * held


def test_a_grid_beyond_memory_is_refused_naming_the_largest_k_that_fits(monkeypatch):
    from gmm.selection import search

    X, _ = make_blobs(200, n_features=3, centers=3, random_state=0)
    budget = search.model_bytes(7, 200, 3, "full", np.float64)
    monkeypatch.setattr(search, "available_memory", lambda: budget)
    with pytest.raises(
        ValueError, match=r"goes up to 8, but one 'full' fit .* largest K that fits is 7"
    ):
        sweep(X, range(1, 9), ["full"], progress=False)
    search.check_grid_size(7, 200, 3, ["full"], np.float64)  # 7 fits: no error


def test_a_huge_range_of_k_is_refused_at_once_without_being_listed():
    """range(1, 10**15) would take days to list; the refusal is immediate."""
    import time

    X, _ = make_blobs(60, centers=2, random_state=0)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="largest K the data allow is 60"):
        sweep(X, range(1, 10**15), progress=False)
    with pytest.raises(ValueError, match="largest K the data allow is 60"):
        GaussianMixtureIC(range(5, 10**15, 7)).fit(X)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("workers", ["fork", "joblib"])
@pytest.mark.parametrize("fate", ["replaced", "deleted"])
def test_parallel_sweep_of_a_memory_map_fits_the_array_given(tmp_path, fate, workers, monkeypatch):
    """joblib's workers would map the file's path again; they get a private copy of
    the data as given (forked workers inherit the mapping itself), so a file replaced
    or deleted after np.load changes nothing."""
    from gmm.selection import parallel

    monkeypatch.setattr(parallel, "backend", lambda n, tasks: workers if n > 1 else "serial")
    monkeypatch.setattr(parallel, "WORTH_FORKING", 0.0)
    X = make_blobs(300, 2, centers=3, random_state=0)[0]
    path = tmp_path / "x.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    if fate == "replaced":
        other = tmp_path / "other.npy"
        np.save(other, X[::-1] * 3 + 7)
        os.replace(other, path)
    else:
        os.remove(path)
    grid = dict(n_components=range(1, 3), covariance_types=["diag"], random_state=0, progress=False)
    parallel = sweep(mapped, n_jobs=2, **grid).table.to_records()
    serial = sweep(np.array(X), **grid).table.to_records()
    for ours, theirs in zip(parallel, serial, strict=True):
        assert ours["log_likelihood"] == pytest.approx(theirs["log_likelihood"], rel=1e-12)


def test_workers_are_forked_only_where_that_is_safe(moons):
    """Forked workers on Linux from a process with one Python thread and no dask
    collection in the arguments; joblib's otherwise; none for one worker."""
    import threading

    from gmm.selection import parallel

    tasks = [(0, (moons, 1)), (1, (moons, 2))]
    assert parallel.backend(1, tasks) == "serial"
    # joblib's executor may have left its threads from an earlier test.
    alone = threading.active_count() == 1
    expected = "fork" if sys.platform.startswith("linux") and alone else "joblib"
    assert parallel.backend(2, tasks) == expected
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert parallel.backend(2, tasks) == "joblib"
    finally:
        stop.set()
        other.join()
    da = pytest.importorskip("dask.array")
    assert parallel.backend(2, [(0, (da.from_array(moons), 1))]) == "joblib"


def test_an_error_in_a_forked_worker_reaches_the_caller_and_stops_the_pool(monkeypatch):
    from gmm.selection import parallel

    monkeypatch.setattr(parallel, "WORTH_FORKING", 0.0)

    if not sys.platform.startswith("linux"):
        pytest.skip("forked workers are used on Linux only")
    results = parallel.run(_fail_on_two, [(k, (k,)) for k in range(6)], 2, "fork")
    with pytest.raises(ZeroDivisionError):
        list(results)
    assert parallel._INHERITED is None


def _fail_on_two(k):
    return 1 / (k - 2)


def test_a_worker_that_dies_is_an_error_not_a_wait_without_end(monkeypatch):
    from gmm.selection import parallel

    monkeypatch.setattr(parallel, "WORTH_FORKING", 0.0)

    if not sys.platform.startswith("linux"):
        pytest.skip("forked workers are used on Linux only")
    parent = os.getpid()
    tasks = [(k, (parent, k)) for k in range(8)]
    with pytest.raises(RuntimeError, match=r"ended with .* unanswered"):
        list(parallel.run(_die_in_a_child, tasks, 2, "fork"))
    assert parallel._INHERITED is None


def _die_in_a_child(parent, k):
    import time

    if os.getpid() != parent:
        os._exit(3)
    time.sleep(0.05)  # leave the child time to take a task
    return k


def test_a_small_grid_stays_in_this_process_and_a_large_one_forks(monkeypatch):
    """A task's time, times the tasks left, decides: below WORTH_FORKING
    every task runs here; above it the other workers take part."""
    from gmm.selection import parallel

    if not sys.platform.startswith("linux"):
        pytest.skip("forked workers are used on Linux only")
    tasks = [(k, (k,)) for k in range(6)]
    monkeypatch.setattr(parallel, "WORTH_FORKING", 1e9)
    assert {pid for _, pid in parallel.run(_pid_after, tasks, 2, "fork")} == {os.getpid()}
    monkeypatch.setattr(parallel, "WORTH_FORKING", 0.0)
    assert len({pid for _, pid in parallel.run(_pid_after, tasks, 2, "fork")}) == 2


def test_this_process_runs_the_smallest_task_first_and_forks_after_it(monkeypatch):
    """The last task (the smallest: the sweep orders them largest first) runs here
    first; if its time times the tasks left exceeds SMALLEST_SHARE of WORTH_FORKING
    the worker is forked at once, before the largest task, and every task is
    answered exactly once."""
    from gmm.selection import parallel

    if not sys.platform.startswith("linux"):
        pytest.skip("forked workers are used on Linux only")
    # 0.05 s x 7 tasks left = 0.35 s > 0.4 x 0.5 s; any later task: 0.01 s x 6 < 0.5 s.
    monkeypatch.setattr(parallel, "WORTH_FORKING", 0.5)
    monkeypatch.setattr(parallel, "SMALLEST_SHARE", 0.4)
    tasks = [(k, (0.05 if k == 7 else 0.01,)) for k in range(8)]
    before = _children()  # other tests' processes, if any are still there
    answers = list(parallel.run(_sleep_then_pid_and_children, tasks, 2, "fork"))
    assert sorted(key for key, _ in answers) == list(range(8))
    assert answers[0][0] == 7 and answers[0][1][0] == os.getpid()  # the smallest, here
    assert not answers[0][1][1] - before  # before any fork
    here = [children - before for _, (pid, children) in answers[1:] if pid == os.getpid()]
    assert here and all(len(new) == 1 for new in here)  # forked after the smallest


def test_a_large_task_forks_when_the_smallest_alone_would_not(monkeypatch):
    """The smallest task's estimate of the work left is too low to fork on, the
    next (the largest)'s is enough: the worker is forked after that one."""
    from gmm.selection import parallel

    if not sys.platform.startswith("linux"):
        pytest.skip("forked workers are used on Linux only")
    # Smallest: 0.001 s x 7 left < 0.4 x 0.5 s (unless a sleep of 1 ms takes 28 ms);
    # the largest: 0.2 s x 6 tasks left > 0.5 s.
    monkeypatch.setattr(parallel, "WORTH_FORKING", 0.5)
    monkeypatch.setattr(parallel, "SMALLEST_SHARE", 0.4)
    tasks = [(k, ({0: 0.2, 7: 0.001}.get(k, 0.05),)) for k in range(8)]
    before = _children()
    answers = dict(parallel.run(_sleep_then_pid_and_children, tasks, 2, "fork"))
    assert sorted(answers) == list(range(8))
    for first in (7, 0):  # the smallest, then the largest: here, before any fork
        assert answers[first][0] == os.getpid() and not answers[first][1] - before
    forked = {pid for pid, _ in answers.values()} - {os.getpid()}
    forked |= {pid for key, (_, children) in answers.items() for pid in children - before}
    assert len(forked) == 1


def _sleep_then_pid_and_children(seconds):
    """This process's id and its worker processes' ids (none in a worker)."""
    import time

    time.sleep(seconds)
    return os.getpid(), _children()


def _children() -> frozenset[int]:
    import multiprocessing

    return frozenset(child.pid for child in multiprocessing.active_children())


def _pid_after(k):
    import time

    time.sleep(0.05)
    return os.getpid()


def _pid_and_threads(k):
    import time

    time.sleep(0.05)
    return os.getpid(), sorted((p["user_api"], p["num_threads"]) for p in threadpool_info())


def test_workers_run_small_fits_on_one_thread_as_a_serial_sweep_does(monkeypatch):
    """With n_jobs=2 on four cores each worker's share is two threads, but fits a
    serial sweep would run on one thread (``serial_threads=1``) get one in every
    process, the forked worker as well as this one."""
    from gmm.selection import parallel

    if not sys.platform.startswith("linux"):
        pytest.skip("forked workers are used on Linux only")
    if not any(p["user_api"] == "blas" for p in threadpool_info()):
        pytest.skip("threadpoolctl sees no BLAS to limit")
    monkeypatch.setattr(parallel, "cpu_count", lambda: 4)
    monkeypatch.setattr(parallel, "WORTH_FORKING", 0.0)
    assert parallel.worker_threads(2) == 2 and parallel.worker_threads(2, 1) == 1
    tasks = [(k, (k,)) for k in range(6)]
    limited = [value for _, value in parallel.run(_pid_and_threads, tasks, 2, "fork", 1)]
    assert len({pid for pid, _ in limited}) == 2  # the worker was forked and did work
    assert all(n == 1 for _, pools in limited for _, n in pools)
    shared = [value for _, value in parallel.run(_pid_and_threads, tasks, 2, "fork")]
    assert {n for _, pools in shared for api, n in pools if api == "blas"} == {2}


def test_a_serial_sweep_of_small_fits_runs_them_on_one_thread(blobs, monkeypatch):
    """Small E-steps run on one BLAS and one OpenMP thread (waking threads costs
    more than they give); above SERIAL_THREADED_WORK the fits get them as they are."""
    from gmm.selection import search

    def threads():
        return sorted((pool["user_api"], pool["num_threads"]) for pool in threadpool_info())

    real, seen = search.fit_point, []

    def recording(*args):
        seen.append(threads())
        return real(*args)

    monkeypatch.setattr(search, "fit_point", recording)
    as_they_are = threads()
    limited = sweep(blobs, [1, 2], "full", progress=False, n_jobs=1)
    assert seen == [[(api, 1) for api, _ in as_they_are]] * 2
    seen.clear()
    monkeypatch.setattr(search, "SERIAL_THREADED_WORK", 0)
    threaded = sweep(blobs, [1, 2], "full", progress=False, n_jobs=1)
    assert seen == [as_they_are] * 2
    assert threads() == as_they_are  # the limit ends with each fit
    for row, other in zip(limited.table, threaded.table, strict=True):
        np.testing.assert_allclose(row["bic"], other["bic"], rtol=1e-12)


def test_sweep_criteria_are_never_those_of_a_fit_made_inside_the_init_callable():
    """A user's init_params callable that fits its own relative-rule model inside a
    sweep's fit must not lend that model's numbers to the table (the reviewer's case)."""
    import gmm
    from gmm import GaussianMixture

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (300, 2)), rng.normal(4, 1, (300, 2))])

    def init(X, k, rs):
        inner = GaussianMixture(k, covariance_type="spherical", convergence="relative")
        return inner.set_params(random_state=0).fit(X).predict(X)

    for params in ({"max_iter": 1}, {"convergence": "relative", "tol": 1e-8}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = gmm.sweep(X, [2], "full", init_params=init, progress=False, **params)
        model = result.best_estimator_
        assert result.table[0]["bic"] == pytest.approx(model.bic(X), rel=1e-12)
        assert result.table[0]["icl"] == pytest.approx(model.icl(X), rel=1e-12)


def test_sweep_with_known_rows_equals_fits_outside_it():
    # The sweep validates X once and lends its fits the rows and their shift
    # (gmm.scale.known_rows); each row of its table is the fit made alone.
    from gmm import scale

    X, _ = make_blobs(300, 3, centers=3, random_state=1)
    X = X + 1e5  # the shift matters
    calls = []
    original = scale.known_rows

    def spy(rows):
        calls.append(rows)
        return original(rows)

    scale.known_rows = spy
    try:
        result = sweep(X, [2, 3], ["full", "EVE"], random_state=0, progress=False, n_jobs=1)
    finally:
        scale.known_rows = original
    assert len(calls) == 1 and calls[0] is not None
    for row in result.table:
        alone = GaussianMixture(
            row["n_components"], covariance_type=row["covariance_type"], random_state=0
        ).fit(X)
        assert row["log_likelihood"] == pytest.approx(alone.score(X) * X.shape[0], rel=1e-12)


_ORPHAN_SCRIPT = """
import sys, time
from gmm.selection import parallel
parallel.WORTH_FORKING = 0.0
def slow(k):
    time.sleep(60 if k < 5 else 0.01)
    return k
print("start", flush=True)
for _ in parallel.run(slow, [(k, (k,)) for k in range(8)], 2, "fork"):
    pass
"""


def _child_pids(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as file:
        return [int(p) for p in file.read().split()]


def _pid_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_forked_workers_end_when_the_sweep_is_killed():
    # A sweep killed by SIGKILL cannot stop its workers; they used to run on (parent 1),
    # then block for ever on the answers' pipe, holding the caller's output open.
    import signal
    import subprocess
    import time

    if not sys.platform.startswith("linux"):
        pytest.skip("forked workers are used on Linux only")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    sweep_process = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert sweep_process.stdout.readline().strip() == "start"
        deadline = time.monotonic() + 30
        while not (workers := _child_pids(sweep_process.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert workers, "the sweep forked no worker"
        sweep_process.send_signal(signal.SIGKILL)
        sweep_process.wait()
        deadline = time.monotonic() + 10
        while any(_pid_running(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_pid_running(w) for w in workers)
    finally:
        sweep_process.kill()
        for worker in locals().get("workers") or []:
            if _pid_running(worker):
                os.kill(worker, signal.SIGKILL)


def test_a_bad_n_jobs_is_refused_before_the_checkpoint_is_touched(tmp_path):
    X, _ = make_blobs(120, centers=2, random_state=0)
    path = tmp_path / "sweep.jsonl"
    sweep(X, range(1, 4), "full", checkpoint=path, progress=False)
    before = path.read_bytes()
    for n_jobs in (0, "two", True, 1.5):
        with pytest.raises(ValueError, match="n_jobs must be"):
            sweep(X, range(1, 4), "full", checkpoint=path, overwrite=True, n_jobs=n_jobs)
        with pytest.raises(ValueError, match="n_jobs must be"):
            sweep(X, [2], "full", n_jobs=n_jobs, progress=False)  # one task too
    assert path.read_bytes() == before


def test_a_fit_out_of_memory_stops_the_sweep_and_is_refitted_on_resume(tmp_path, monkeypatch):
    # Not a row "MemoryError" in the checkpoint, returned again by every resumed run.
    X, _ = make_blobs(120, centers=2, random_state=0)
    path = tmp_path / "sweep.jsonl"
    fit = GaussianMixture.fit

    def out_of_memory(self, *args, **kwargs):
        if self.n_components == 2:
            raise MemoryError("transient")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(GaussianMixture, "fit", out_of_memory)
    with pytest.raises(MemoryError, match="transient"):
        sweep(X, range(1, 4), "full", checkpoint=path, progress=False)
    monkeypatch.setattr(GaussianMixture, "fit", fit)
    resumed = sweep(X, range(1, 4), "full", checkpoint=path, progress=False)
    fresh = sweep(X, range(1, 4), "full", progress=False)
    assert all(row["error"] is None for row in resumed.table)
    assert [r["bic"] for r in resumed.table] == [r["bic"] for r in fresh.table]


@pytest.mark.parametrize(
    "edit",
    [{"bic": None}, {"n_components": True}, {"bic": "oops"}, {"converged": 3}, {"aic": None}],
)
def test_a_hand_edited_checkpoint_row_is_refused_not_read_as_nan(tmp_path, edit):
    import json

    from gmm.checkpoint import CheckpointError

    X, _ = make_blobs(120, centers=2, random_state=0)
    path = tmp_path / "sweep.jsonl"
    sweep(X, range(1, 3), "full", checkpoint=path, progress=False)
    header, *lines = path.read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    first = next(i for i, row in enumerate(rows) if row["n_components"] == 1)
    lines[first] = json.dumps({**rows[first], **edit})
    path.write_text("\n".join([header, *lines]) + "\n")
    with pytest.raises(CheckpointError, match="is damaged: its row for n_components"):
        sweep(X, range(1, 3), "full", checkpoint=path, progress=False)


def test_what_every_fit_would_refuse_is_refused_before_the_first(monkeypatch):
    from gmm.selection import search

    calls = []
    monkeypatch.setattr(search, "fit_point", lambda *a, **k: calls.append(a))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    X[5:, 0] = np.nan  # 5 complete rows
    with pytest.raises(
        ValueError, match=r"5 rows without a missing entry.*largest K the data allow"
    ):
        sweep(X, range(1, 9), "full", nan_policy="omit", progress=False)
    X = rng.normal(size=(40, 2))
    X[3] = np.nan
    with pytest.raises(ValueError, match="Row 3 of X has no observed entry"):
        sweep(X, range(1, 4), "full", nan_policy="marginalize", progress=False)
    X[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"Column\(s\) \[1\] of X have no observed entry"):
        sweep(X, range(1, 4), "full", nan_policy="omit", progress=False)
    assert calls == []
