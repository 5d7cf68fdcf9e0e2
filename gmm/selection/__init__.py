"""Model selection: fit a grid of (n_components, covariance_type), score every fit.

:func:`sweep` fits one :class:`~gmm.GaussianMixture` per grid point and returns a
:class:`SweepResult`: the table of information criteria (AIC, BIC, ICL), the
best model for the chosen criterion and a plot of the criterion against K.
:class:`GaussianMixtureIC` is the same sweep behind the estimator interface.

Each grid point is fitted exactly as
``GaussianMixture(k, covariance_type=c, random_state=random_state,
n_init=n_init, **estimator_params).fit(X, sample_weight=sample_weight)``, with the
same integer ``random_state`` for every point. So a row can be checked against
scikit-learn's ``GaussianMixture``, and the table does not depend on the order in
which the fits finish. Nor on ``n_jobs``, with one exception in the last digit: a
serial sweep advances the fits of one K together where they can share their
products (:mod:`gmm.lockstep`, the 'mclust' grid), whose sums then round in
another order than a fit's alone in a worker, so a row may differ from its
parallel (or resumed) twin by an ulp (relative BIC differences of about 4e-16,
the same choice; 400 × 3 blobs, K = 1..5, measured in review).

One concern per module:

- :mod:`~gmm.selection.table`: :class:`SweepTable`, :class:`SweepResult`, CSV
  and the plot of a criterion;
- :mod:`~gmm.selection.search`: :func:`sweep`, :func:`fit_point`, the argument
  checks, the checkpoint and :func:`information_criteria` (the formulas are in
  :mod:`gmm.criteria`);
- :mod:`~gmm.selection.parallel`: joblib workers, BLAS thread limits, the
  progress bar;
- :mod:`~gmm.selection.ic`: :class:`GaussianMixtureIC`;
- :mod:`~gmm.selection.mclust`: ``covariance_types='mclust'``, mclust's BIC
  table and sign, its summary, its (MAP) ICL and its plots.
"""

from ..criteria import CRITERIA
from .ic import GaussianMixtureIC
from .search import (
    check_covariance_types,
    check_n_components,
    fit_point,
    information_criteria,
    sweep,
)
from .table import COLUMNS, SweepResult, SweepTable, best_index, plot_criterion

__all__ = [
    "COLUMNS",
    "CRITERIA",
    "GaussianMixtureIC",
    "SweepResult",
    "SweepTable",
    "best_index",
    "check_covariance_types",
    "check_n_components",
    "fit_point",
    "information_criteria",
    "plot_criterion",
    "sweep",
]
