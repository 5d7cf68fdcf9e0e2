"""The interface every covariance family implements.

The EM pass never asks which covariance type it holds. It asks the family for
per-chunk *features* of the data, for per-iteration *coefficients* of the
current parameters, for squared Mahalanobis distances and summable *moments*
(the E-step kernels); the shared statistics step turns summed moments into
``(nk, means, S_k)`` and the family's M-step (:meth:`CovarianceFamily.estimate`)
applies its constraint; the representation methods convert, count and check the
fitted arrays. Adding a family (mclust has 14) means adding one module that
subclasses :class:`CovarianceFamily` and registering it with
:func:`gmm.covariance.register`; see docs/architecture.md.

Conventions shared by all families (the same as scikit-learn's, so fitted
attributes are interchangeable):

- ``precisions_cholesky`` holds upper-triangular factors ``U`` with
  ``precision = U @ U.T`` ('full': (K, D, D), 'tied': (D, D), 'diag': (K, D),
  'spherical': (K,)).
- Data handed to the kernels is already shifted by a reference point (so the
  expanded quadratic forms do not cancel catastrophically on offset data); the
  means handed in are shifted by the same point.
- Kernels do no checking. Validation happens once, at the public boundary.
"""

from __future__ import annotations

import functools
import itertools
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..statistics import Scatter

if TYPE_CHECKING:
    from ..em import Parameters

#: Relative error allowed in a squared Mahalanobis distance, per working dtype.
#: The expanded quadratic ``x'Px - 2x'Pm + m'Pm`` loses about ``eps · kappa · D``
#: of it, where ``kappa = |P| (r + |m|)² / D`` and ``r`` is the data's spread;
#: components whose kappa exceeds ``EXPANSION_TOLERANCE / eps`` are computed
#: another way (centred, or in float64).
EXPANSION_TOLERANCE = {np.dtype(np.float64): 2e-9, np.dtype(np.float32): 1e-4}


@functools.lru_cache(maxsize=8)
def kappa_max(dtype) -> float:
    """Largest condition estimate the expanded quadratic may have in ``dtype`` (cached)."""
    dtype = np.dtype(dtype)
    return EXPANSION_TOLERANCE[dtype] / np.finfo(dtype).eps


def expansion_dtype(dtype, condition) -> np.dtype:
    """``dtype`` if the expanded quadratic keeps its accuracy there, else float64.

    ``condition`` holds the per-component estimates ``kappa_k`` (a callable
    returning them, so float64 data never pay for them).
    """
    dtype = np.dtype(dtype)
    if dtype == np.float64 or np.max(condition()) <= kappa_max(dtype):
        return dtype
    return np.dtype(np.float64)


class CollapsedComponentError(ValueError):
    """A component's covariance is not positive definite (the component collapsed).

    Parameters
    ----------
    component : int or None
        Index of the first offending component, or None for a shared ('tied')
        covariance.
    dtype : numpy dtype
        The working dtype, to add advice for float32.
    """

    def __init__(self, component: int | None, dtype: Any = np.float64) -> None:
        self.component = component
        where = "the shared covariance" if component is None else f"component {component}"
        msg = (
            f"Fitting the mixture failed: {where} has an ill-defined covariance "
            "(it collapsed onto too few or identical points, so its covariance is "
            "not positive definite). Increase reg_covar (for example to 1e-4), "
            "use fewer components, or scale the features to comparable ranges."
        )
        if np.dtype(dtype) == np.float32:
            msg += " Passing float64 data instead of float32 also improves accuracy."
        super().__init__(msg)


class CovarianceFamily(ABC):
    """One covariance structure of a Gaussian mixture, in three parts.

    **E-step kernels** (:meth:`features`, :meth:`coefficients`,
    :meth:`mahalanobis`, :meth:`moments`, :meth:`working_dtype`): squared
    Mahalanobis distances of row chunks and the summable moments of a chunk.
    The family keeps its own precision policy here: which formulation each
    component takes (an expanded quadratic, fast, or a centred one, exact for
    tight components) and when float32 data must be computed in float64.

    **Statistics and M-step** (:attr:`scatter_kind`, :meth:`scatter`,
    :meth:`estimate`): the summed moments become a
    :class:`gmm.statistics.Scatter` ``(nk, means, S_k)`` through the shared
    functions of :mod:`gmm.statistics` (the family only says which kind it
    reads); :meth:`estimate` applies the family's constraint and decides where
    ``reg_covar`` enters, so the constraint still holds after it. It receives
    the previous parameters, whose ``state`` the family owns (for inner
    iterations warm-started from the last orientation, say), and returns the
    new state.

    **Representation** (:meth:`shape`, :meth:`n_parameters`,
    :meth:`precision_cholesky`, :meth:`precisions`, :meth:`covariances`, ...,
    :meth:`colorize`, :meth:`check_fitted`): the fitted arrays, the parameter
    count for AIC/BIC/ICL, changes between covariances and precision factors,
    the factor that turns standard normal draws into draws of a component, and
    the check of arrays that come from outside EM (model files).

    Instances are registered by name (:func:`gmm.covariance.register`); one
    instance serves every estimator, so anything that changes from one
    iteration to the next travels in ``Parameters.state``, never on ``self``.
    Kernels do no checking: validation happens once, at the public boundary.
    """

    #: Registry key, the value of ``covariance_type``.
    name: str = ""
    #: What a valid precision is, for error messages.
    precision_requirement: str = "symmetric positive definite"
    #: What a valid precision factor is, for error messages.
    factor_requirement: str = "upper triangular with a positive diagonal"
    #: Which :class:`~gmm.statistics.Scatter` :meth:`estimate` reads:
    #: 'full', 'diagonal' or 'pooled' (see :mod:`gmm.statistics`).
    scatter_kind: str = "full"
    #: Whether an E-step of few components on wide rows (:data:`gmm.em.THREAD_ROW_BYTES`)
    #: splits its chunks and runs the parts on threads, as one of many components
    #: does (:func:`gmm.em.threaded_shape`): a stream over wide rows is bound by
    #: reading them, and a second core reads faster.
    threads_wide_rows: bool = True

    # ============================================================ E-step kernels
    @abstractmethod
    def features(self, X: np.ndarray) -> np.ndarray:
        """Per-row features that make the E-step and the moments one GEMM each.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Shifted data, float32 or float64.

        Returns
        -------
        feats : ndarray of shape (n_rows, n_feats)
            In X's dtype (``X`` itself if the family needs nothing more).
        """

    def chunk_features(self, X: np.ndarray, n_components: int) -> np.ndarray:
        """The features the EM pass computes for a chunk, knowing the number of components.

        Optional hook: a family whose fastest formulation depends on the shape
        (the 'full' family's whitened one needs no features) returns what its
        kernels for ``n_components`` components read; the default is
        :meth:`features`. :meth:`mahalanobis` and :meth:`moments` must accept
        either.

        A family may also define ``shifted_chunk_features(X, shift,
        n_components)``, returning ``(X - shift, chunk_features(X - shift))``
        with the shift done while the features' columns are written (one pass
        over rows read once, as online updates read them), or None when there
        is nothing to fuse. :func:`gmm.em.shifted_chunk_features` uses it only
        when the class that defines ``chunk_features`` also defines the hook
        (a subclass that changes its features falls back to the two passes).
        Likewise ``read_once_features(X, shift, n_components)`` may return
        ``(X - shift, what the kernels read)`` for a chunk one E-step reads once
        (the diagonal families give the shifted rows themselves from large
        chunks on), or None to leave it to ``shifted_chunk_features``;
        :func:`gmm.em.read_once_features` calls it under the same rule.
        """
        return self.features(X)

    def chunk_columns(self, n_features: int, n_components: int, dtype) -> int:
        """Width of the largest per-row temporary of the E-step (sizes the chunks).

        Optional hook; the default is the width of :meth:`features` plus D.
        """
        probe = self.chunk_features(np.zeros((1, n_features), dtype=dtype), n_components)
        return probe.shape[1] + n_features

    @abstractmethod
    def working_dtype(self, dtype, weights, means, prec_chol) -> np.dtype:
        """The dtype in which the E-step keeps its accuracy for these parameters.

        ``dtype`` itself, or float64 when float32 kernels would lose the
        distances (tight or near-singular components). ``means`` are shifted.
        The EM pass then computes that iteration in the returned dtype; its
        outputs keep the data's dtype.
        """

    @abstractmethod
    def coefficients(self, weights: np.ndarray, means: np.ndarray, prec_chol: np.ndarray) -> Any:
        """Precompute, once per iteration, what :meth:`mahalanobis` needs.

        Parameters
        ----------
        weights : ndarray of shape (n_components,)
        means : ndarray of shape (n_components, n_features)
            Shifted like the data, in the working dtype.
        prec_chol : ndarray
            Precision factors in the family's shape, in the working dtype.

        Returns
        -------
        coefs : object
            Opaque to the caller; passed back to :meth:`mahalanobis`,
            :meth:`moments` and :meth:`scatter` of the same iteration.
        """

    @abstractmethod
    def mahalanobis(self, X: np.ndarray, feats: np.ndarray, coefs: Any) -> tuple[np.ndarray, Any]:
        """Squared Mahalanobis distance of every row to every component.

        Returns
        -------
        maha : ndarray of shape (n_components, n_rows), non-negative
            Component-major, so that reductions over components in the E-step
            are elementwise operations between rows.
        work : object
            Whatever the family wants to reuse in :meth:`moments` for the same
            chunk (or None).
        """

    def log_prob(
        self, X: np.ndarray, feats: np.ndarray, coefs: Any, log_norm_const: np.ndarray
    ) -> tuple[np.ndarray, Any]:
        """Weighted log-probabilities ``log_norm_const_k - maha / 2``, and the work.

        ``log_norm_const`` (K,) is in the working dtype. By default
        :meth:`mahalanobis` then one pass; a family that can fold the halving and
        the constant into its own product overrides it (the axis-aligned ones).

        Returns
        -------
        log_prob : ndarray of shape (n_components, n_rows)
        work : object
            As from :meth:`mahalanobis`.
        """
        log_prob, work = self.mahalanobis(X, feats, coefs)
        log_prob *= -0.5
        log_prob += log_norm_const[:, None]
        return log_prob, work

    def log_prob_less_shared(
        self, X: np.ndarray, feats: np.ndarray, coefs: Any, log_norm_const: np.ndarray
    ) -> tuple[np.ndarray, Any] | None:
        """Optional hook of the fitting E-step: :meth:`log_prob` less a shared term.

        A family whose log-probabilities hold a per-row term ``s_i`` that is the
        same for every component (it cancels in the responsibilities and the
        entropy) may return ``(log_prob - s, work)`` here, cheaper to compute, and
        give the chunk's weighted sum ``sum_i w_i s_i`` back from its moments in
        :meth:`shared_log_prob`. Only :func:`gmm.em.chunk_statistics` calls it
        (per-row values, for predictions and scores, come from :meth:`log_prob`).
        None (the default): use :meth:`log_prob`.
        """
        return None

    def shared_log_prob(self, moments: tuple[np.ndarray, ...], coefs: Any) -> tuple[float, float]:
        """``sum_i w_i s_i`` of a chunk (see :meth:`log_prob_less_shared`), from its
        moments, and a bound on its rounding error: where the bound exceeds
        :data:`gmm.em.SHARED_RTOL` of the chunk's log-likelihood, the chunk is
        computed again by :meth:`log_prob`."""
        raise NotImplementedError

    @abstractmethod
    def moments(
        self, X: np.ndarray, feats: np.ndarray, resp: np.ndarray, coefs: Any, work: Any
    ) -> tuple[np.ndarray, ...]:
        """Sufficient statistics of one chunk; summing them over chunks is exact.

        ``resp`` has shape (n_components, n_rows) and already carries the sample
        weights (each column sums to the row's weight). ``coefs`` and ``work``
        are those of this chunk's :meth:`coefficients` and :meth:`mahalanobis`.
        The caller casts the arrays to float64 before summing them.

        A family may also define ``summed_moments(X, feats, resp, coefs,
        blocks)``: the moments of the row ranges ``blocks`` (slices of the
        chunk), summed in row order in float64, or None to leave them to
        ``moments`` range by range. :func:`gmm.em._summed_block_moments` uses
        it only where the class that defines ``moments`` defines it too.
        """

    # ------------------------------------------- E-steps of several fits at once
    @property
    def stack_kind(self) -> Hashable | None:
        """Optional hook of :mod:`gmm.lockstep`: the kernels and features this family's
        E-steps share with other families', or None (the default: never stacked).

        Fits advanced together on the same rows whose families have equal kinds
        (and whose :meth:`stack_key` agree at that E-step) compute their
        log-probabilities in one product (:meth:`stacked_log_prob`) and their
        moments in another (:meth:`stacked_moments`): one pass over the
        features for many models, in products wide enough to run near the
        machine's peak. A sweep runs its fits together only when two or more of
        its families share a kind (:func:`gmm.selection.search.stackable_fits`).
        """
        return None

    def stack_key(self, coefs: Any) -> Hashable | None:
        """What this E-step, with coefficients ``coefs``, may be stacked with (see
        :attr:`stack_kind`): equal keys stack; None computes it alone, by
        :meth:`log_prob` and :meth:`moments`. Only called where :attr:`stack_kind`
        is not None."""
        return None

    def stacked_log_prob(
        self, X: np.ndarray, feats: np.ndarray, coefs: Sequence[Any], log_norm_consts: Sequence
    ) -> tuple[np.ndarray, Any]:
        """:meth:`log_prob` of several fits' ``coefs`` on one chunk, one above the other.

        Only for ``coefs`` of equal :meth:`stack_key`. ``log_norm_consts[i]`` is
        (K_i,) in the working dtype. Returns the (sum of K_i, rows)
        log-probabilities, fit ``i``'s rows after fit ``i - 1``'s, and the work
        for :meth:`stacked_moments` (as :meth:`mahalanobis` gives it).
        O(rows · sum K_i · F) time.
        """
        raise NotImplementedError

    def stacked_moments(
        self, X: np.ndarray, feats: np.ndarray, resp: np.ndarray, coefs: Sequence[Any], work: Any
    ) -> list[tuple[np.ndarray, ...]]:
        """:meth:`moments` of several fits on one chunk, in float64, one tuple per fit.

        ``resp`` (sum of K_i, rows) stacks the fits' (weighted) responsibilities
        as :meth:`stacked_log_prob` stacks their log-probabilities; ``work`` is
        its work. O(rows · sum K_i · F) time.
        """
        raise NotImplementedError

    @abstractmethod
    def log_det_precision_cholesky(self, prec_chol: np.ndarray, n_features: int) -> np.ndarray:
        """``log det U_k`` for every component, shape (n_components,).

        Needs ``n_features`` because a spherical factor stands for D equal ones.
        """

    # ====================================================== statistics, M-step
    @abstractmethod
    def scatter(
        self, moments: tuple[np.ndarray, ...], nk: np.ndarray, shift: np.ndarray, coefs: Any
    ) -> Scatter:
        """The statistics step: summed :meth:`moments` → :class:`~gmm.statistics.Scatter`.

        ``nk`` is already guarded (:func:`gmm.statistics.guarded_counts`);
        ``shift`` is added back to the means. Implementations call the shared
        functions of :mod:`gmm.statistics` for their :attr:`scatter_kind`.
        """

    @abstractmethod
    def estimate(
        self, scatter: Scatter, reg_covar: float, previous: Parameters | None
    ) -> tuple[np.ndarray, Any]:
        """M-step: covariances (float64, the family's shape) from the statistics.

        Parameters
        ----------
        scatter : Scatter
            Of kind :attr:`scatter_kind`.
        reg_covar : float
            Added where the family's constraint still holds after it (for the
            unconstrained families: to every variance).
        previous : Parameters or None
            The parameters of the last iteration, with the family's ``state``;
            None at the start of EM.

        Returns
        -------
        covariances : ndarray
        state : object
            Kept in the new ``Parameters.state`` for the next M-step (None if
            the family needs nothing).
        """

    # ============================================================ representation
    @abstractmethod
    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of ``covariances_``, ``precisions_`` and ``precisions_cholesky_``."""

    @abstractmethod
    def n_parameters(self, n_components: int, n_features: int) -> int:
        """Number of free covariance parameters (for AIC, BIC and ICL)."""

    @abstractmethod
    def precision_cholesky(self, covariances: np.ndarray) -> np.ndarray:
        """Upper factors ``U`` of the precisions; raises CollapsedComponentError."""

    @abstractmethod
    def precision_cholesky_from_precisions(self, precisions: np.ndarray) -> np.ndarray:
        """Upper factors ``U`` with ``precisions = U @ U.T``."""

    @abstractmethod
    def precisions(self, prec_chol: np.ndarray) -> np.ndarray:
        """``U @ U.T`` in the family's shape."""

    @abstractmethod
    def covariances(self, prec_chol: np.ndarray) -> np.ndarray:
        """Covariances from precision factors (inverse of :meth:`precision_cholesky`)."""

    @abstractmethod
    def component_covariance(self, covariances: np.ndarray, k: int) -> np.ndarray | float:
        """Covariance of component ``k`` as a matrix (D, D), a vector (D,) or a scalar.

        The forms :class:`gmm.gaussian.Gaussian` (and so :func:`gmm.mvn_logpdf`
        and :func:`gmm.sample_mvn`) accepts: densities, sampling and plots of a
        fitted component have one path.
        """

    def check_n_features(self, n_features: int) -> None:
        """Raise ValueError if the family does not apply to ``n_features`` features.

        Optional hook; the default accepts any number. mclust's one-feature
        models ('E', 'V') and its multivariate ones call it when the data
        reach them, before any fitted state changes.
        """
        return None

    def check_rows(self, total_weight: float, n_components: int, n_features: int) -> None:
        """Raise ValueError if data weighing ``total_weight`` rows are too few for the model.

        Optional hook; the default accepts any weight. Called once by ``fit``
        on the whole data's weight (sample weights count as repeated rows),
        before any fitted state changes, never inside an M-step: an M-step
        may see only part of the weight (the start of ``'random_from_data'``,
        one batch of ``partial_fit``). mclust's models refuse data that weigh
        no more rows than the model has free parameters. O(1).
        """
        return None

    def decompose(self, covariances: np.ndarray) -> dict[str, np.ndarray]:
        """Volume, shape and orientation of fitted covariances, as mclust's ``variance``.

        Optional hook: the mclust families implement it
        (:func:`gmm.covariance.decomposition.decompose`); others raise
        NotImplementedError.
        """
        raise NotImplementedError(
            f"covariance_type={self.name!r} has no mclust decomposition; fit one of "
            "mclust's models (for example 'VVV' instead of 'full') to get it."
        )

    def colorize(self, z: np.ndarray, covariances: np.ndarray, k: int) -> np.ndarray:
        """Standard normal draws ``z`` (n, D) → deviations with component ``k``'s covariance.

        ``z @ L.T`` for the Cholesky factor ``L L' = Sigma_k`` (for diagonal
        families, ``z`` times the standard deviations), through
        :class:`gmm.gaussian.Gaussian`, so sampling, densities and plots share
        one factorisation. In z's dtype. O(n·D² + D³) or O(n·D). Override it
        when the family holds a cheaper factor.
        """
        from ..gaussian import Gaussian  # gaussian → em → covariance: import when sampling

        cov = np.asarray(self.component_covariance(covariances, k), dtype=np.float64)
        return Gaussian.from_psd_covariance(np.zeros(z.shape[-1]), cov).colorize(z)

    # ---------------------------------------------------------------- checks
    @abstractmethod
    def is_positive_definite(self, matrices: np.ndarray) -> bool:
        """Whether precisions (or covariances) in this family's shape are SPD."""

    @abstractmethod
    def is_inverse_pair(self, covariances: np.ndarray, precisions: np.ndarray, dtype) -> bool:
        """Whether ``covariances`` and ``precisions`` are each other's inverse.

        To ``64 · eps(dtype)`` times each component's condition number: EM's
        inverses are about 16 times closer than that.
        """

    @abstractmethod
    def is_valid_factor(self, precisions_cholesky: np.ndarray) -> bool:
        """Whether ``precisions_cholesky`` has the form of this family's factors."""

    def check_fitted(self, covariances, precisions, precisions_cholesky, dtype) -> None:
        """Check fitted arrays of this family's shape; raise ValueError saying what is wrong.

        Used where arrays come from outside EM (a model file): all finite,
        covariances and precisions positive definite and each other's inverse,
        and the factor of the family's form with ``U @ U.T`` equal to the
        precisions. Shapes are checked by the caller. O(K·D³) time.
        """
        arrays = {
            "covariances_": covariances,
            "precisions_": precisions,
            "precisions_cholesky_": precisions_cholesky,
        }
        for name, value in arrays.items():
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name} contains NaN or infinity")
        for name in ("covariances_", "precisions_"):
            if not self.is_positive_definite(arrays[name]):
                raise ValueError(f"{name} is not {self.precision_requirement}")
        # sample() draws with covariances_, the predictions use the precisions.
        if not self.is_inverse_pair(covariances, precisions, dtype):
            raise ValueError("covariances_ is not the inverse of precisions_")
        if not self.is_valid_factor(precisions_cholesky):
            raise ValueError(f"precisions_cholesky_ must be {self.factor_requirement}")
        rebuilt = np.asarray(self.precisions(precisions_cholesky), dtype=np.float64)
        stored = np.asarray(precisions, dtype=np.float64)
        rtol = np.sqrt(float(np.finfo(dtype).eps))
        if not np.allclose(rebuilt, stored, rtol=rtol, atol=rtol * np.max(np.abs(stored))):
            raise ValueError("precisions_cholesky_ does not agree with precisions_ (U @ U.T != P)")


def stacked_rows(sizes: Sequence[int]) -> list[slice]:
    """Each fit's rows in a stack of the fits' components, from their counts ``sizes``
    (``stacked_log_prob``, :mod:`gmm.lockstep`). O(fits).

    >>> stacked_rows([2, 3])
    [slice(0, 2, None), slice(2, 5, None)]
    """
    bounds = list(itertools.accumulate(sizes, initial=0))
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]
