"""scikit-learn's estimator checks over every estimator of gmm."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from gmm import GaussianMixture

ESTIMATORS = [GaussianMixture(), GaussianMixture(3, covariance_type="diag")]

try:  # the model-selection estimator lands separately
    from gmm import GaussianMixtureIC

    ESTIMATORS.append(GaussianMixtureIC(n_components=range(1, 3), covariance_type="all"))
except ImportError:  # pragma: no cover
    pass

INIT_DRAWS_DIFFER = (
    "With more than one component the k-means start draws rows at random, and a row "
    "repeated n times is drawn with other odds than one row of weight n; from the same "
    "initial parameters weighted EM equals repetition "
    "(tests/test_estimator.py::test_integer_weights_equal_repeated_rows)."
)


def expected_failures(estimator):
    n_components = getattr(estimator, "n_components", 1)
    if n_components == 1:
        return {}
    return {"check_sample_weight_equivalence_on_dense_data": INIT_DRAWS_DIFFER}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
