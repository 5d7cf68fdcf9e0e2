"""Tests of gmm.hc (mclust's model-based hierarchical clustering) and init_params='hc'.

References: R's mclust 6.0 (partitions written by the committed script
tests/reference/mclust/hc.R into hc.json), scipy's Ward linkage, and closed
forms of the data transformations.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.cluster.hierarchy import fcluster, linkage

from gmm import GaussianMixture, hc, hierarchical
from gmm.hierarchical import MODELS, SUBSET, USES, transform
from gmm.initialization import get_initializer, quantile_classes

REFERENCE = Path(__file__).parent / "reference" / "mclust"
HC_JSON = REFERENCE / "hc.json"


def _reference():
    with open(HC_JSON) as file:
        return json.load(file)


REF = _reference()
RUNS = [
    (name, run)
    for name, data in REF["datasets"].items()
    for run in data["hc"]
    if not run.endswith("dupPartition")
]


# ------------------------------------------------------------- against mclust
@pytest.mark.parametrize(("dataset", "run"), RUNS)
def test_partitions_equal_mclust_hclass(dataset, run):
    # mclust: hclass(hc(X, modelName = m, use = u), 1:9), labels 1..G in order
    # of first appearance; ours are 0..G-1 in the same order, so the labels
    # themselves must be equal (not only up to relabelling).
    data = REF["datasets"][dataset]
    X = np.array(data["X"], dtype=np.float64)
    model, use = run.split("/")
    tree = hc(X, model, use)
    for G, expected in zip(REF["G"], data["hc"][run], strict=True):
        np.testing.assert_array_equal(tree.labels(G), np.array(expected) - 1, err_msg=f"G={G}")


@pytest.mark.parametrize("dataset", list(REF["datasets"]))
def test_duplicate_rows_start_together_as_mclust_dup_partition(dataset):
    # mclust: hc(X, "VVV", use = "SVD", partition = dupPartition(X)).
    data = REF["datasets"][dataset]
    X = np.array(data["X"], dtype=np.float64)
    tree = hc(X, merge_duplicates=True)
    for G, expected in zip(REF["G"], data["hc"]["VVV/SVD/dupPartition"], strict=True):
        np.testing.assert_array_equal(tree.labels(G), np.array(expected) - 1)
    # Equal rows share a label at every level.
    _, inverse = np.unique(X, axis=0, return_inverse=True)
    for G in range(1, 10):
        labels = tree.labels(G)
        for group in np.unique(inverse):
            assert np.unique(labels[inverse.ravel() == group]).size == 1


def test_mclust_hc_default_starts_from_single_rows():
    # Evidence for the default merge_duplicates=False: faithful has 16
    # duplicated rows, and mclust's hc(X) (what mclustBIC uses) equals the
    # single-row start, not the dupPartition start, from G = 1..9 in hc.json.
    data = REF["datasets"]["faithful"]
    X = np.array(data["X"])
    assert len(X) - len(np.unique(X, axis=0)) == 16
    single = [np.array(p) for p in data["hc"]["VVV/SVD"]]
    grouped = [np.array(p) for p in data["hc"]["VVV/SVD/dupPartition"]]
    assert any(not np.array_equal(a, b) for a, b in zip(single, grouped, strict=True))


@pytest.mark.parametrize("dataset", list(REF["datasets"]))
def test_quantile_classes_equal_mclust_qclass(dataset):
    data = REF["datasets"][dataset]
    X = np.array(data["X"], dtype=np.float64)
    for column, classes in enumerate(data["qclass"]):
        for k, expected in zip(range(1, 10), classes, strict=True):
            np.testing.assert_array_equal(quantile_classes(X[:, column], k), np.array(expected) - 1)


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript is not installed")
def test_live_mclust_reproduces_the_committed_reference(tmp_path):
    out = tmp_path / "hc.json"
    probe = subprocess.run(
        ["Rscript", "-e", "library(mclust); library(jsonlite)"], capture_output=True, timeout=60
    )
    if probe.returncode != 0:
        pytest.skip("R is installed without the mclust or jsonlite package")
    subprocess.run(
        ["Rscript", str(REFERENCE / "hc.R"), str(out)], check=True, capture_output=True, timeout=300
    )
    with open(out) as file:
        live = json.load(file)
    for name, data in REF["datasets"].items():
        assert live["datasets"][name]["hc"] == data["hc"]
        assert live["datasets"][name]["qclass"] == data["qclass"]
        np.testing.assert_array_equal(live["datasets"][name]["X"], data["X"])


# --------------------------------------------------------- other references
def test_eii_is_ward_linkage():
    # mclust's note: EII is Ward's method. scipy's Ward linkage, cut at G.
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(30, 3)), rng.normal(size=(30, 3)) + 4])
    tree = hc(X, "EII", "VARS")
    ward = linkage(X, method="ward")
    for G in range(1, 8):
        ours = tree.labels(G)
        theirs = fcluster(ward, G, criterion="maxclust")
        # Same partition: a bijection between the labels.
        pairs = set(zip(ours.tolist(), theirs.tolist(), strict=True))
        assert len(pairs) == G == np.unique(theirs).size


def test_transformations_closed_forms():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3)) @ np.array([[2.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.2]])
    X += [5.0, -1.0, 2.0]
    std = (X - X.mean(0)) / X.std(0, ddof=1)
    np.testing.assert_allclose(transform(X, "VARS"), X)
    np.testing.assert_allclose(transform(X, "STD"), std)
    singular = np.linalg.svd(std, compute_uv=False)
    svd = transform(X, "SVD")  # Z = U S^(1/2): Zᵀ Z = S
    np.testing.assert_allclose(svd.T @ svd, np.diag(singular), atol=1e-10)
    pcr = transform(X, "PCR")  # Z = U S: Zᵀ Z = S²
    np.testing.assert_allclose(pcr.T @ pcr, np.diag(singular**2), atol=1e-9)
    centred = X - X.mean(0)
    pcs = transform(X, "PCS")
    np.testing.assert_allclose(
        pcs.T @ pcs, np.diag(np.linalg.svd(centred, compute_uv=False) ** 2), atol=1e-9
    )
    sph = transform(X, "SPH")  # identity ML covariance
    np.testing.assert_allclose(np.cov(sph.T, bias=True), np.eye(3), atol=1e-10)


def test_constant_column_is_dropped_by_standardising_uses():
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.normal(size=20), np.full(20, 3.0), rng.normal(size=20)])
    assert transform(X, "STD").shape == (20, 2)
    assert transform(X, "SVD").shape == (20, 2)
    assert hc(X).labels(2).shape == (20,)


# ----------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(
    X=arrays(
        np.float64,
        st.tuples(st.integers(4, 25), st.integers(2, 3)),
        elements=st.floats(-100, 100, allow_nan=False, width=32),
    ),
    model=st.sampled_from(MODELS),
    use=st.sampled_from(["VARS", "STD", "SVD"]),
)
def test_tree_is_nested_with_g_clusters_in_first_appearance_order(X, model, use):
    if np.unique(X, axis=0).shape[0] < 2 or np.any(np.ptp(X, axis=0) == 0):
        return
    tree = hc(X, model, use)
    previous = None
    for G in range(1, min(tree.n_initial, 6) + 1):
        labels = tree.labels(G)
        assert np.unique(labels).size == G
        _, first = np.unique(labels, return_index=True)
        assert np.all(np.diff(first) > 0)  # label g first appears before g + 1
        if previous is not None:  # each cluster at G lies inside one cluster at G - 1
            assert all(np.unique(previous[labels == g]).size == 1 for g in range(G))
        previous = labels


# ------------------------------------------------------------ subset, errors
def test_subset_is_drawn_from_random_state_and_small_data_is_deterministic():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 2))
    a, b = hc(X, subset=40, random_state=0), hc(X, subset=40, random_state=0)
    assert a.subsampled and a.rows.shape == (40,) and a.n_samples == 60
    np.testing.assert_array_equal(a.rows, b.rows)
    np.testing.assert_array_equal(a.merges, b.merges)
    assert not hc(X).subsampled
    np.testing.assert_array_equal(hc(X, random_state=1).merges, hc(X, random_state=2).merges)
    assert SUBSET == 2000


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "VEV"}, "Valid values are: 'VVV', 'VII', 'EII', 'EEE'"),
        ({"use": "RND"}, "Valid values are: 'VARS'"),
        ({"subset": 1}, "subset must be an int >= 2"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        hc(np.arange(12.0).reshape(6, 2) ** 1.5, **kwargs)


def test_bad_data_and_levels():
    with pytest.raises(ValueError, match=r"NaN or infinity"):
        hc(np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 1.0]]))
    with pytest.raises(ValueError, match="every column of X is constant"):
        hc(np.ones((5, 2)), "VVV", "SVD")
    with pytest.raises(ValueError, match="at least 2 distinct rows"):
        hc(np.ones((5, 2)), "EII", "VARS", merge_duplicates=True)
    tree = hc(np.random.default_rng(0).normal(size=(8, 2)))
    with pytest.raises(ValueError, match=r"must be in 1\.\.8"):
        tree.labels(9)
    with pytest.raises(TypeError, match="must be an int"):
        tree.labels(2.0)


def test_uses_are_all_accepted():
    X = np.random.default_rng(4).normal(size=(15, 3))
    for use in USES:
        assert hc(X, "VVV", use).labels(3).shape == (15,)


# ------------------------------------------------------------ init_params='hc'
def test_init_hc_is_the_tree_cut_at_k():
    X = np.array(REF["datasets"]["iris"]["X"])
    init = get_initializer("hc")
    labels = init(X, 3, np.random.RandomState(0), None)
    np.testing.assert_array_equal(labels, np.array(REF["datasets"]["iris"]["hc"]["VVV/SVD"][2]) - 1)


def test_init_hc_on_one_feature_uses_quantile_classes():
    x = np.array(REF["datasets"]["faithful"]["X"])[:, :1]
    labels = get_initializer("hc")(x, 4, np.random.RandomState(0), None)
    np.testing.assert_array_equal(labels, np.array(REF["datasets"]["faithful"]["qclass"][0][3]) - 1)


def test_init_hc_with_subset_gives_responsibilities_for_every_row(monkeypatch):
    # The module (gmm.hc is the function).
    monkeypatch.setattr(hierarchical, "SUBSET", 50)
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) + 6]).astype(np.float32)
    resp = get_initializer("hc")(X, 2, np.random.RandomState(0), None)
    assert resp.shape == (120, 2) and resp.dtype == np.float32
    np.testing.assert_allclose(resp.sum(1), 1, rtol=1e-6)
    # Two well separated blobs: the start separates them.
    hard = resp.argmax(1)
    assert np.unique(hard[:60]).size == 1 and hard[0] != hard[-1]
    again = get_initializer("hc")(X, 2, np.random.RandomState(0), None)
    np.testing.assert_array_equal(resp, again)


def test_init_hc_errors_when_k_exceeds_the_rows_of_the_tree():
    X = np.array([[0.0, 1.0], [2.0, 0.5], [1.0, 3.0]])
    with pytest.raises(ValueError, match="cannot make 5 clusters from a tree of 3 rows"):
        get_initializer("hc")(X, 5, np.random.RandomState(0), None)


def test_fit_from_hc_equals_fit_from_its_partition():
    # init_params='hc' is the M-step from mclust's partition: the same fit as a
    # callable returning that partition (one-hot).
    X = np.array(REF["datasets"]["diabetes"]["X"])
    part = np.array(REF["datasets"]["diabetes"]["hc"]["VVV/SVD"][2]) - 1
    ours = GaussianMixture(3, init_params="hc", tol=1e-6, max_iter=300).fit(X)
    ref = GaussianMixture(
        3, init_params=lambda X, k, rs: np.eye(k)[part], tol=1e-6, max_iter=300
    ).fit(X)
    np.testing.assert_allclose(ours.means_, ref.means_)
    assert ours.n_iter_ == ref.n_iter_


def test_collinear_columns_drop_the_directions_the_data_do_not_span():
    # Dividing by a near-zero singular value would turn rounding noise into a
    # column; 'SVD' and 'SPH' keep the numerical rank (2 here).
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=30), rng.normal(size=30)
    X = np.column_stack([a, 2 * a, b])
    for use in ("SVD", "SPH"):
        Z = transform(X, use)
        assert Z.shape == (30, 2)
        np.testing.assert_allclose(
            np.cov(Z.T, bias=True) if use == "SPH" else Z.T @ Z,
            np.eye(2) if use == "SPH" else np.diag(np.diag(Z.T @ Z)),
            atol=1e-9,
        )


def test_clear_cache_makes_the_next_tree_afresh_and_equal():
    from gmm.hierarchical import cached_hc, clear_cache

    X = np.random.default_rng(3).normal(size=(60, 3))
    first = cached_hc(X, "VVV", "SVD", 0)
    assert cached_hc(X, "VVV", "SVD", 0) is first  # kept across calls
    clear_cache()
    again = cached_hc(X, "VVV", "SVD", 0)
    assert again is not first
    np.testing.assert_array_equal(again.merges, first.merges)
    np.testing.assert_array_equal(again.labels(4), hc(X, "VVV", "SVD").labels(4))


@pytest.mark.parametrize("model", ["VVV", "VII"])
def test_row_minima_rescanned_one_by_one_or_as_a_block_give_the_same_tree(model, monkeypatch):
    """_RowMinima.recompute rescans up to FEW_ROWS rows each through its own prefix,
    more as one masked block: the same minima and partners, so the same merges."""
    X = np.random.default_rng(4).normal(size=(300, 4)) * [1e-4, 1, 1e2, 1e4] + 1e6
    X[150:] += 3
    trees = []
    for few in (0, hierarchical.FEW_ROWS, 10**9):
        monkeypatch.setattr(hierarchical, "FEW_ROWS", few)
        trees.append(hc(X, model, "SVD"))
    for tree in trees[1:]:
        np.testing.assert_array_equal(tree.merges, trees[0].merges)
        np.testing.assert_array_equal(tree.costs, trees[0].costs)


@pytest.mark.parametrize("use", ["VARS", "SVD"])
def test_deferred_determinants_give_the_trees_of_computing_them_all(use, monkeypatch):
    """'VVV' pays a pair's determinant only when the pair comes first on its lower
    bound (the cost without it): the merges and costs, bit for bit, of computing
    every determinant when its cluster forms. Wide scales make the determinants
    decide many merges with 'VARS'."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(240, 3)) * [1e-2, 1, 1e2]
    X[120:] += [0.05, 4, 300]
    X[::7] = np.round(X[::7])  # some near-equal costs
    deferred = hc(X, "VVV", use)
    monkeypatch.setattr(hierarchical._Clusters, "defer", False)
    eager = hc(X, "VVV", use)
    np.testing.assert_array_equal(deferred.merges, eager.merges)
    assert deferred.costs.tobytes() == eager.costs.tobytes()
