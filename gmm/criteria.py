"""Information criteria of a fitted mixture: the parameter count, AIC, BIC and ICL.

One place for the formulas, used by the estimators' ``aic``/``bic``/``icl``, by
:func:`gmm.sweep` and by the command line. Lower is better for all three:

- ``aic = -2 LL + 2 p``
- ``bic = -2 LL + p log n``
- ``icl = bic + 2 E``, with ``E = -sum_i w_i sum_k r_ik log r_ik`` the entropy of
  the responsibilities (Biernacki, Celeux & Govaert, 2000)

where ``LL = sum_i w_i log p(x_i)``, ``p`` the number of free parameters and
``n = sum_i w_i`` (the row count without weights: weights count observations).

>>> from gmm.covariance import get_family
>>> n_parameters(get_family("full"), n_components=2, n_features=2)
11
>>> round(bic(log_likelihood=-100.0, n_parameters=11, n_samples=50), 4)
243.0323
"""

from __future__ import annotations

import math

import numpy as np

from .covariance import CovarianceFamily

#: The criteria, by name.
CRITERIA = ("aic", "bic", "icl")


def n_parameters(family: CovarianceFamily, n_components: int, n_features: int) -> int:
    """Free parameters of a mixture: covariances, means and ``K - 1`` weights."""
    return (
        family.n_parameters(n_components, n_features) + n_components * n_features + n_components - 1
    )


def aic(log_likelihood: float, n_parameters: int) -> float:
    """Akaike's criterion ``-2 LL + 2 p``."""
    return -2.0 * log_likelihood + 2.0 * n_parameters


def bic(log_likelihood: float, n_parameters: int, n_samples: float) -> float:
    """Schwarz's criterion ``-2 LL + p log n``."""
    return -2.0 * log_likelihood + n_parameters * math.log(n_samples)


def icl(log_likelihood: float, n_parameters: int, n_samples: float, entropy: float) -> float:
    """Integrated completed likelihood, ``bic + 2 · entropy``."""
    return bic(log_likelihood, n_parameters, n_samples) + 2.0 * entropy


def icl_map(
    log_likelihood: float, n_parameters: int, n_samples: float, map_log_sum: float
) -> float:
    """mclust's ICL in our sign: ``bic - 2 Σ_i w_i log z_i,MAP`` (lower is better).

    ``map_log_sum`` is ``Σ_i w_i log max_k r_ik``, the log-probabilities of the
    hard MAP assignment. mclust's ``icl()`` is minus this value. It differs
    from :func:`icl`, which adds the soft entropy ``-Σ_i Σ_k r_ik log r_ik``:
    a row's entropy is never below ``-log max_k r_ik``, so ``icl >= icl_map``,
    equal when every row is certain.

    >>> round(icl_map(-100.0, 11, 50, map_log_sum=-3.0), 4)
    249.0323
    """
    return bic(log_likelihood, n_parameters, n_samples) - 2.0 * float(map_log_sum)


def all_criteria(
    log_likelihood: float, entropy: float, n_parameters: int, n_samples: float
) -> dict[str, float]:
    """``log_likelihood``, ``aic``, ``bic`` and ``icl`` as one dict of floats."""
    log_likelihood, entropy, n_samples = float(log_likelihood), float(entropy), float(n_samples)
    return {
        "log_likelihood": log_likelihood,
        "aic": aic(log_likelihood, n_parameters),
        "bic": bic(log_likelihood, n_parameters, n_samples),
        "icl": icl(log_likelihood, n_parameters, n_samples, entropy),
    }


def row_entropy(resp: np.ndarray) -> np.ndarray:
    """Entropy ``-sum_k r_ik log r_ik`` of each row of responsibilities (``0 log 0 = 0``).

    Parameters
    ----------
    resp : ndarray of shape (n_samples, n_components)
        Rows summing to 1, as from ``predict_proba``.

    Returns
    -------
    entropy : ndarray of shape (n_samples,)
        In ``resp``'s dtype. O(n · K) time, O(n · K) memory.

    Notes
    -----
    numpy's logarithm of the positive entries (the others' term is 0) times
    the entries, summed component by component: twice as fast as scipy's
    ``xlogy`` on the E-step's component-major responsibilities (0.30 against
    0.68 ms for 20,000 rows of 9 components), the same terms.

    Examples
    --------
    >>> import numpy as np
    >>> row_entropy(np.array([[0.5, 0.5], [0.9, 0.1]])).round(6).tolist()
    [0.693147, 0.325083]
    """
    by_component = np.asarray(resp).T  # (K, n): the E-step's layout, contiguous
    terms = np.zeros_like(by_component)
    np.log(by_component, out=terms, where=by_component > 0)
    terms *= by_component  # a NaN entry stays NaN
    return -np.sum(terms, axis=0)
