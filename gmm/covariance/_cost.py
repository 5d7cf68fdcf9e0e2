"""Which formulation of the 'full' E-step is fastest for a shape: a measured cost model.

The 'full' family (and the mclust models built on its kernels) can compute the
squared distances and the moments of a row chunk two ways:

- **expanded**: features ``[x_i x_j (i<=j), x]`` (``F = D(D+1)/2 + D``
  columns) built once per chunk, then one (K × F) product for the distances
  and one for the moments. Per row and iteration it costs about
  ``F · (a + b · K)``: building and streaming the features (``a``, memory
  traffic, the same whatever K) and the two skinny products (``b`` per
  component).
- **whitened**: per component, ``y = (x - m_k) @ U_k`` by a triangular product
  and the scatter as a rank-n update of ``sqrt(r) · y``. Per row and
  iteration about ``K · (c · D² + e · D)``: BLAS-3 work (``c``) and the
  elementwise passes (``e``).

With many features and few components the features' memory traffic dominates
and whitening wins; with many components the single expanded product wins.
The four constants are measured on this machine by :func:`calibrate` (about
0.2 s, once per process, on the first 'full' fit; process CPU time on one BLAS
thread, so other jobs on a shared machine hardly move them) by timing both kernels on
small synthetic chunks and solving for them: nothing is guessed.

Overrides (documented in docs/architecture.md):

- ``GMM_FULL_FORMULATION=expanded|whitened`` in the environment, or the
  private context manager :func:`forced` (the tests run every agreement test
  under each formulation with it), forces one formulation;
- :func:`set_constants` replaces the measured constants (for instance with
  those measured on another machine), ``set_constants(None)`` re-measures.

Time O(1) per decision after the one calibration; no data is touched.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

#: The formulations of the 'full' E-step.
FORMULATIONS = ("expanded", "whitened")

_constants: dict[str, float] | None = None
_forced: str | None = None
#: Most (D, K) shapes whose choice is kept (the table starts again beyond).
CHOICES_KEPT = 1024
#: The cost model's choices by (D, K), and the constants they were made with (a
#: new set of constants, even the same numbers, starts a new table).
_choices: tuple[dict | None, dict[tuple[int, int], str]] = (None, {})


def expanded_columns(n_features: int) -> int:
    """Width F of the expanded features: ``D(D+1)/2 + D``."""
    return n_features * (n_features + 1) // 2 + n_features


def predicted_seconds(n_features: int, n_components: int, constants: dict) -> dict[str, float]:
    """Predicted seconds per row and iteration of each formulation."""
    d, k = n_features, n_components
    f = expanded_columns(d)
    return {
        "expanded": f * (constants["a"] + constants["b"] * k),
        "whitened": k * (constants["c"] * d * d + constants["e"] * d),
    }


def choose(n_features: int, n_components: int, dtype) -> str:
    """The formulation of the 'full' E-step for this shape and dtype.

    The forced one if any (:func:`forced`, ``GMM_FULL_FORMULATION``, read on
    every call), else the cheaper by the measured cost model, predicted once
    per (D, K) and set of constants: an E-step asks several times per update,
    and an online update is short enough for the prediction to count.
    """
    name = _forced or os.environ.get("GMM_FULL_FORMULATION", "").strip().lower() or None
    if name is not None:
        if name not in FORMULATIONS:
            raise ValueError(
                f"GMM_FULL_FORMULATION={name!r} is not a formulation of the 'full' E-step; "
                f"use one of {', '.join(FORMULATIONS)} (or unset it to choose by shape)."
            )
        return name
    global _choices
    measured = constants(dtype)
    made_with, table = _choices
    if made_with is not measured or len(table) >= CHOICES_KEPT:
        made_with, table = _choices = (measured, {})
    shape = (n_features, n_components)
    choice = table.get(shape)
    if choice is None:
        cost = predicted_seconds(n_features, n_components, measured)
        choice = table[shape] = min(FORMULATIONS, key=cost.__getitem__)
    return choice


@contextmanager
def forced(name: str | None) -> Iterator[None]:
    """Private: run the 'full' E-step in formulation ``name`` inside the block (None: choose)."""
    global _forced
    if name is not None and name not in FORMULATIONS:
        raise ValueError(f"unknown formulation {name!r}; use one of {', '.join(FORMULATIONS)}")
    previous, _forced = _forced, name
    try:
        yield
    finally:
        _forced = previous


def set_constants(values: dict[str, float] | None) -> None:
    """Replace the measured constants ``a, b, c, e`` (seconds); None measures them again."""
    global _constants
    if values is not None:
        missing = {"a", "b", "c", "e"} - set(values)
        if missing:
            raise ValueError(f"cost constants need keys a, b, c, e; missing {sorted(missing)}")
        values = {key: float(values[key]) for key in ("a", "b", "c", "e")}
    _constants = values


def constants(dtype=np.float64) -> dict[str, float]:
    """The cost model's constants, measured once per process (float64 kernels).

    float32 kernels are about twice as fast on both formulations, so one set
    decides for both dtypes.
    """
    global _constants
    if _constants is None:
        _constants = calibrate()
    return _constants


def _best_seconds(run: Callable[[], object], repeats: int = 5) -> float:
    """The least CPU time of ``repeats`` runs (after one warm-up): the least disturbed by load.

    Process CPU time, not wall time: on a shared machine the wall time of a
    run counts the other jobs' time slices, and the two formulations' ratio
    then drifts with the load (measured under a load of 6 on two cores: the
    predicted expanded/whitened ratio at D = 10, K = 2 was 1.10 in one
    calibration and 0.56 in the next). The kernels run on one BLAS thread
    (:func:`calibrate`), so CPU time is their time.
    """
    run()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return float(np.min(times))


#: (formulation, D, K) of the calibration runs.
CALIBRATION_SHAPES = (
    ("expanded", 8, 1),
    ("expanded", 8, 16),
    ("expanded", 32, 1),
    ("expanded", 32, 8),
    ("expanded", 64, 2),
    ("whitened", 8, 2),
    ("whitened", 32, 2),
    ("whitened", 64, 1),
    ("whitened", 128, 1),
)


def calibrate(rows: int = 1024) -> dict[str, float]:
    """Measure ``a, b, c, e`` by timing both kernels on synthetic chunks of ``rows`` rows.

    Each shape of :data:`CALIBRATION_SHAPES` is timed on one BLAS thread
    (features, distances and moments of one chunk; the least CPU time of five
    runs, :func:`_best_seconds`); the constants are the non-negative least-squares fit of the
    model to the per-row times, in relative terms (each time weighs by its
    inverse). About 0.2 s (0.16 to 0.23 s under a load of 6 on two cores), once per process.
    """
    from ..blas_threads import blas_threads
    from .full import Full  # full imports this module

    family = Full()
    rng = np.random.default_rng(0)

    def per_row(name: str, d: int, k: int) -> float:
        X = rng.standard_normal((rows, d))
        means = rng.standard_normal((k, d))
        factors = np.broadcast_to(np.eye(d), (k, d, d)).copy()
        weights = np.full(k, 1.0 / k)
        resp = np.full((k, rows), 1.0 / k)
        with forced(name):
            coefs = family.coefficients(weights, means, factors)

            def run():
                feats = family.chunk_features(X, k)
                _, work = family.mahalanobis(X, feats, coefs)
                family.moments(X, feats, resp, coefs, work)

            return _best_seconds(run) / rows

    with blas_threads(1):  # as the E-step's threads run their row ranges; CPU time is theirs
        measured = {shape: per_row(*shape) for shape in CALIBRATION_SHAPES}
    return fit_constants(measured)


def fit_constants(measured: dict[tuple[str, int, int], float]) -> dict[str, float]:
    """Non-negative least-squares constants from ``{(formulation, D, K): seconds per row}``.

    Relative residuals (each equation divided by its time), so small and large
    shapes count alike. Constants are at least 1e-13 s, so none is ever free.
    """
    from scipy.optimize import nnls

    names = ("a", "b", "c", "e")
    rows, times = [], []
    for (name, d, k), seconds in measured.items():
        f = expanded_columns(d)
        if name == "expanded":
            row = [f, f * k, 0.0, 0.0]
        else:
            row = [0.0, 0.0, k * d * d, k * d]
        rows.append(np.array(row) / seconds)
        times.append(1.0)
    # Scale the columns so the solver sees numbers near one.
    A = np.array(rows)
    scale = np.max(A, axis=0)
    solution, _ = nnls(A / scale, np.array(times))
    values = solution / scale
    return {name: max(float(v), 1e-13) for name, v in zip(names, values, strict=True)}
