"""Kernels of mclust's eigen-decomposition ``Sigma_k = lambda_k D_k A_k D_k'``.

Pure functions on scatter matrices ``W_k = sum_n r_nk (x_n - m_k)(x_n - m_k)'``
(or their diagonals), shared by the mclust covariance families of
:mod:`gmm.covariance.mclust`. ``lambda_k`` is the volume ``|Sigma_k|^(1/d)``,
``A_k`` a diagonal shape with determinant 1 and ``D_k`` an orthogonal
orientation (Celeux & Govaert, 1995, "Gaussian parsimonious clustering
models", Pattern Recognition 28).

- :func:`equal_shape`: the fixed point of Celeux & Govaert for a shape shared by
  components of variable volume (models VEI, VEE, VEV);
- :func:`common_orientation`: an orientation shared by components whose shapes
  vary (models EVE, VVE), by sweeps of exact plane rotations (Flury &
  Gautschi's idea for common principal components, 1986, SIAM J. Sci. Stat.
  Comput. 7); it reaches the optimum of the majorise-minimise iteration of
  Browne & McNicholas (2014, "Estimating common principal components in high
  dimensions", ADAC 8) in far fewer steps;
- :func:`decompose`: volume, shape and orientation of fitted covariances, laid
  out as mclust's ``variance`` holds them.

Kernels trust their inputs (float64, positive counts). Every function costs
O(K·D³) per iteration at most (a sweep of :func:`common_orientation`:
O(K·D⁴)) and O(K·D²) memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.linalg import lapack


def eigh_decreasing(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (..., D) in decreasing order and eigenvectors as columns (..., D, D)."""
    values, vectors = np.linalg.eigh(matrices)
    return values[..., ::-1], vectors[..., ::-1]


def root_det(values: np.ndarray) -> np.ndarray:
    """``prod(values)^(1/d)`` along the last axis, in log space (no overflow)."""
    with np.errstate(divide="ignore"):
        return np.exp(np.mean(np.log(values), axis=-1))


def _root_det_matrix(matrix: np.ndarray) -> float:
    sign, logdet = np.linalg.slogdet(matrix)
    return float(np.exp(logdet / matrix.shape[-1])) if sign > 0 else 0.0


@dataclass
class InnerResult:
    """Outcome of an inner M-step iteration.

    ``worst`` is the component that moved most in the last iteration when the
    iteration cap was reached before the tolerance (None if it converged).
    """

    n_iter: int
    worst: int | None
    objective: float = float("nan")


def equal_shape(
    scatters: np.ndarray,
    nk: np.ndarray,
    volumes: np.ndarray | None,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray, InnerResult]:
    """Variable volumes ``lambda_k`` and one shape ``C`` (det 1): Celeux & Govaert's fixed point.

    Alternates ``C = P / |P|^(1/d)`` with ``P = sum_k W_k / lambda_k`` and
    ``lambda_k = tr(W_k C^-1) / (d n_k)``, each the exact minimiser of the
    negative log-likelihood given the other, until no volume changes by more
    than ``tol`` relative.

    Parameters
    ----------
    scatters : ndarray of shape (K, D) or (K, D, D)
        Diagonal scatters (VEI: ``diag W_k``; VEV: eigenvalues of ``W_k``, in
        decreasing order) or full ones (VEE).
    nk : ndarray of shape (K,)
    volumes : ndarray of shape (K,) or None
        Warm start; None starts from ``tr(W_k) / (d n_k)``.
    tol, max_iter : float, int

    Returns
    -------
    volumes : ndarray of shape (K,)
    shape : ndarray of shape (D,) or (D, D), determinant 1
    result : InnerResult

    Examples
    --------
    Two components whose scatters have the same shape: volumes 1 and 4.

    >>> import numpy as np
    >>> scatters = np.array([[4.0, 1.0], [16.0, 4.0]]) * 10  # diag(W_k), n_k = 10
    >>> volumes, shape, _ = equal_shape(scatters, np.array([10.0, 10.0]), None, 1e-12, 100)
    >>> np.round(volumes, 6), np.round(shape, 6)
    (array([2., 8.]), array([2. , 0.5]))
    """
    full = scatters.ndim == 3
    d = scatters.shape[1]
    traces = np.trace(scatters, axis1=1, axis2=2) if full else scatters.sum(axis=1)
    if volumes is None:
        volumes = traces / (d * nk)
    change = np.zeros_like(volumes)
    with np.errstate(divide="ignore", invalid="ignore"):
        for n_iter in range(1, max_iter + 1):
            pooled = np.tensordot(1.0 / volumes, scatters, axes=1)
            if full:
                shape = pooled / _root_det_matrix(pooled)
                inverse = np.linalg.inv(shape)
                traces = np.einsum("kij,ji->k", scatters, inverse)
            else:
                shape = pooled / root_det(pooled)
                traces = scatters @ (1.0 / shape)
            updated = traces / (d * nk)
            change = np.abs(updated - volumes) / updated
            volumes = updated
            if not np.max(change) > tol:  # NaN (a collapse) stops too
                return volumes, shape, InnerResult(n_iter, None)
    return volumes, shape, InnerResult(max_iter, int(np.argmax(change)))


def common_orientation(
    scatters: np.ndarray,
    nk: np.ndarray,
    equal_volume: bool,
    orientation: np.ndarray | None,
    tol: float,
    max_iter: int,
    last: float | None = None,
    progress: float = 0.0,
    tail: bool = False,
) -> tuple[np.ndarray, np.ndarray, InnerResult]:
    """One orientation ``D`` and per-component diagonals ``Psi_k = lambda_k A_k`` (EVE, VVE).

    Minimises the M-step's ``-2 logL = sum_k n_k log|Psi_k| + tr(W_k D Psi_k^-1 D')``
    by block coordinate descent. Given ``D`` the diagonals are exact (VVE: ``Psi_k =
    diag(D' W_k D) / n_k``; EVE: ``A_k = diag(D' W_k D)`` scaled to det 1 and one
    ``lambda = sum_k |diag(D' W_k D)|^(1/d) / n``). Given the diagonals, a
    rotation of ``D`` in the plane of axes ``i, j`` by an angle ``t`` changes
    ``sum_k tr(W_k D Psi_k^-1 D')`` by ``P cos 2t + Q sin 2t`` plus a constant,
    with ``P = sum_k w_k (M_k,ii - M_k,jj) / 2``, ``Q = sum_k w_k M_k,ij``,
    ``w_k = 1/Psi_k,i - 1/Psi_k,j`` and ``M_k = D' W_k D``: its exact minimiser
    is ``(cos 2t, sin 2t) = -(P, Q) / hypot(P, Q)`` (the Jacobi-rotation idea of
    Flury & Gautschi's algorithm for common principal components, applied to
    this objective). Rotations in disjoint planes do not interact, so one
    sweep is ``d - 1`` rounds of ``d / 2`` simultaneous rotations (a
    round-robin over all pairs), each followed by the exact diagonals. Every
    step lowers the objective; a sweep stops the iteration when the objective
    per observation, ``f = sum_k n_k log|Psi_k| / n`` (twice the mean negative
    log-likelihood, up to a constant; free of the weights' scale), falls by at
    most ``tol`` relative (``tol · (1 + |f|)``, as mclust's inner tolerance is
    relative), or rises by rounding. It reaches the
    optimum Browne & McNicholas's majorise-minimise (MM) iteration converges
    to, in tens of sweeps where the MM step takes thousands of iterations
    (measured: d = 10, K = 9, EVE: 30 sweeps, 15 ms, against 19,339 MM steps,
    4 s). Warm starts (the last orientation) leave few sweeps per EM iteration.

    O(K·d⁴) time per sweep (``d - 1`` rounds of batched ``d x d`` products),
    O(K·d²) memory.

    Parameters
    ----------
    scatters : ndarray of shape (K, D, D)
        ``W_k``.
    nk : ndarray of shape (K,)
    equal_volume : bool
        True for EVE, False for VVE.
    orientation : ndarray of shape (D, D) or None
        Warm start; None runs from the eigenvectors of ``sum_k W_k`` and from
        the identity, and keeps the lower objective (:func:`_cold_start`).
    tol, max_iter : float, int
        ``max_iter`` caps the sweeps.
    last : float or None, default=None
        The objective ``f`` the previous M-step of the same fit ended at (its
        ``result.objective``), for a warm start inside EM.
    progress : float, default=0
        With ``last``, the sweeps also stop once one lowers ``f`` by at most
        ``progress · |f_0 - last|``, where ``f_0`` is ``f`` at the warm start:
        the change of the scatters since the last M-step, as it moves the
        objective. Solving an M-step finer than the outer iteration moves is
        work the next M-step undoes; as EM converges that change vanishes and
        the stop is ``tol`` again, so the fixed point is the same. Every sweep
        lowers the objective, so EM's likelihood still never decreases.
    tail : bool, default=False
        Start in the tail (see below): over-relaxed from the first sweep. For the
        continuation of a screened cold start, so that it takes the sweeps a
        run from that start to ``tol`` takes.

    Returns
    -------
    orientation : ndarray of shape (D, D)
        Orthogonal, columns are the axes.
    diagonals : ndarray of shape (K, D)
        ``Psi_k``; the covariances are ``D diag(Psi_k) D'``.
    result : InnerResult

    Notes
    -----
    Over-relaxation in the tail: once a sweep lowers ``f`` by at most
    :data:`TAIL_TOL` relative (the basin is chosen: the screening tolerance of
    the cold start), each later rotation turns by :data:`RELAXATION` times its
    optimal angle. In a plane the objective is ``c - h cos(2t - a)`` with the
    optimum at ``2t = a``, so any factor in (0, 2) still lowers it, and the
    fixed points (all angles 0) are the same; near the optimum the sweeps
    converge linearly and slowly, and the larger steps take about half as
    many. Measured on the 18 cold M-steps of the mclust benchmark's sweep
    (20,000 x 10, EVE and VVE, K = 1..9): the continuations from the screened
    starts took 263 sweeps instead of 533, every one ending in the same
    minimum and lower (by 1e-8 to 3e-7 in ``f``): the plain sweeps' steps fall
    below ``tol`` while still short of the minimum. Factors 1.2, 1.4, 1.6,
    1.8 took 383, 263, 239, 360 sweeps. Over-relaxing from the first sweep
    instead sent 2 of the 18 cold starts to other minima, so the screening
    sweeps stay plain.

    Examples
    --------
    Scatters that share the axes of a 30° rotation are recovered exactly.

    >>> import numpy as np
    >>> c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    >>> R = np.array([[c, -s], [s, c]])
    >>> W = np.stack([R @ np.diag([9.0, 1.0]) @ R.T, R @ np.diag([1.0, 4.0]) @ R.T]) * 10
    >>> axes, psi, _ = common_orientation(W, np.array([10.0, 10.0]), False, None, 1e-12, 1000)
    >>> np.round(psi, 6)
    array([[9., 1.],
           [1., 4.]])
    >>> bool(np.allclose(np.abs(axes.T @ R), np.eye(2)))
    True
    """
    n_components, d = scatters.shape[:2]
    if orientation is None:
        return _cold_start(scatters, nk, equal_volume, tol, max_iter)
    relaxation = RELAXATION if tail else 1.0
    share = nk / nk.sum()  # per observation: the objective is free of the weights' scale
    total = nk.sum()

    log_nk = d * np.log(nk)
    counts = nk[:, None]

    def diagonals(rotated, with_logs=True):
        """``Psi_k`` and ``sum_i log Psi_k,i`` from ``M_k`` (the diagonal is a view).

        VVE's ``Psi_k`` need no logarithm: without ``with_logs`` (the rounds of a
        sweep, which read only ``Psi_k``) the sums are None, for EVE too.
        """
        projected = rotated.reshape(n_components, d * d)[:, :: d + 1]  # diag(D' W_k D)
        if not equal_volume:
            if not with_logs:
                return projected / counts, None
            return projected / counts, np.log(projected).sum(axis=1) - log_nk
        logs = np.log(projected).sum(axis=1)
        volumes = np.exp(logs / d)
        scale = volumes.sum() / total
        psi = projected * (scale / volumes)[:, None]
        return psi, np.full(n_components, d * np.log(scale)) if with_logs else None

    rounds = _round_robin(d)
    identity = np.eye(d)
    rotation = identity.copy()
    rotated = orientation.T @ scatters @ orientation
    psi, logs = diagonals(rotated)
    change = np.zeros(n_components)
    previous = float(share @ logs)
    floor = 0.0 if last is None else progress * abs(previous - last)
    with np.errstate(divide="ignore", invalid="ignore"):
        for n_iter in range(1, max_iter + 1):
            if not np.all(psi > 0) or not np.all(np.isfinite(psi)):
                # A collapsed component: the caller's factorisation reports it.
                return orientation, psi, InnerResult(n_iter, None, previous)
            start = psi
            for axes, entries in rounds:
                _plane_rotations(rotated, 1.0 / psi, axes, entries, rotation, identity, relaxation)
                orientation = orientation @ rotation
                rotated = rotation.T @ rotated @ rotation
                psi = diagonals(rotated, with_logs=False)[0]
            # Products of rotations drift from orthogonality by rounding: restore it
            # once a sweep and recompute D' W_k D from the scatters.
            orientation = orthonormal_factor(orientation)
            rotated = orientation.T @ scatters @ orientation
            psi, logs = diagonals(rotated)
            objective = float(share @ logs)
            change = np.max(np.abs(np.log(psi / start)), axis=1)
            # Each sweep lowers the objective in exact arithmetic: a rise is rounding.
            gain = previous - objective
            if not gain > max(tol * (1.0 + abs(objective)), floor):
                return orientation, psi, InnerResult(n_iter, None, objective)
            if gain <= TAIL_TOL * (1.0 + abs(objective)):
                relaxation = RELAXATION
            previous = objective
    return orientation, psi, InnerResult(max_iter, int(np.argmax(change)), previous)


def orthonormal_factor(matrix: np.ndarray) -> np.ndarray:
    """``Q`` of ``matrix = QR`` (float64, square) with ``R``'s diagonal made non-negative.

    Householder QR by LAPACK's ``dgeqrf`` and ``dorgqr`` called directly: what
    ``np.linalg.qr`` computes, the same numbers, without its wrapper's cost
    (about 36 µs against 6 µs at 10 x 10, once per sweep of
    :func:`common_orientation`). O(D³).

    >>> a = np.array([[3.0, 1.0], [4.0, 2.0]])
    >>> q = orthonormal_factor(a)
    >>> bool(np.allclose(q.T @ q, np.eye(2))), bool(np.all(np.diag(q.T @ a) > 0))
    (True, True)
    """
    packed, tau, _, info = lapack.dgeqrf(matrix)
    if info != 0:  # pragma: no cover - LAPACK refuses only invalid arguments
        raise np.linalg.LinAlgError(f"dgeqrf failed (info={info}).")
    q, _, info = lapack.dorgqr(packed, tau)
    if info != 0:  # pragma: no cover
        raise np.linalg.LinAlgError(f"dorgqr failed (info={info}).")
    return q * np.where(np.diagonal(packed) < 0, -1.0, 1.0)


#: Relative change of the objective at which the two cold starts of
#: :func:`_cold_start` are compared; the one kept then continues to ``tol``.
COLD_SCREEN_TOL = 1e-4
#: A sweep that lowers the objective by at most this much relative puts
#: :func:`common_orientation` in its tail, over-relaxed from the next sweep.
TAIL_TOL = COLD_SCREEN_TOL
#: The factor on the optimal angles in the tail (in (0, 2): every rotation still
#: lowers the objective); see :func:`common_orientation`.
RELAXATION = 1.4


def _cold_start(
    scatters: np.ndarray, nk: np.ndarray, equal_volume: bool, tol: float, max_iter: int
) -> tuple[np.ndarray, np.ndarray, InnerResult]:
    """:func:`common_orientation` without a warm start: the better of two starts.

    The M-step's objective has several local minima once d is more than a few
    (measured at d = 10: from one partition the ends of different starts differ
    by up to 6 % in ``f``), and the sweeps end at the one their start leads to.
    Both the eigenvectors of ``sum_k W_k`` and the identity (mclust's start of
    its MM iteration) are swept until ``f`` moves by :data:`COLD_SCREEN_TOL`
    relative, and the lower objective (the first on a tie or a NaN) continues
    to ``tol``: the same sweeps as running it to ``tol`` from the start (a
    sweep's state is the orientation), without the other's tail. Two starts
    that reach one minimum tie within the screening: either may be kept (the
    same minimum to ``tol``, its axes in another order). On the mclust
    benchmark's 20,000 x 10 sweep (hc start) the identity was kept in 8 of the
    18 cold M-steps of EVE and VVE; 8 of their 18 fits then ended 2,800 to
    5,500 higher in log-likelihood (EVE, K = 9: -242,447 against -236,998), one
    0.08 lower (the same optimum within EM's tolerance), the others equal, in
    207 EM iterations instead of 249 (the two models' fits: 1.9 s against 2.1 s
    from one start, one run each). From a
    k-means partition at K = 6, EVE now ends at mclust's log-likelihood
    (-241,362.4; -248,152 before). The 18 cold M-steps of that sweep take
    1,539 sweeps (2,202 with both starts run to ``tol``, 848 from one start).
    The continuation runs over-relaxed (``tail=True``, see
    :func:`common_orientation`): the 18 cold M-steps of the hc sweep took 821
    sweeps instead of 1,091, each to the same minimum.
    """
    screen = max(tol, COLD_SCREEN_TOL)
    best = None
    for start in (eigh_decreasing(scatters.sum(axis=0))[1], np.eye(scatters.shape[1])):
        found = common_orientation(scatters, nk, equal_volume, start, screen, max_iter)
        if best is None or found[2].objective < best[2].objective:
            best = found
    done = best[2]
    left = max_iter - done.n_iter
    if screen <= tol or done.worst is not None or not np.isfinite(done.objective):
        return best
    if left < 1:  # the cap came with the screening tolerance, before tol
        return best[0], best[1], InnerResult(max_iter, 0, done.objective)
    axes, psi, result = common_orientation(
        scatters, nk, equal_volume, best[0], tol, left, tail=True
    )
    return axes, psi, InnerResult(done.n_iter + result.n_iter, result.worst, result.objective)


@lru_cache(maxsize=16)
def _round_robin(d: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """``d - 1`` rounds (``d`` rounds for odd ``d``) of disjoint pairs ``i < j``
    that together hold every pair of ``range(d)`` once (the circle method).

    Kept per ``d`` (read-only arrays): every M-step of EVE and VVE asks for them.

    Each round of ``m`` pairs is ``(axes, entries)``: ``axes`` is ``i`` then
    ``j`` (2m,), ``entries`` the flat indices in a ``d x d`` matrix of
    ``(i, i)``, ``(j, j)``, ``(i, j)`` and ``(j, i)`` (4m,)."""
    m = d + d % 2  # an odd d gets a dummy that sits out
    seats = list(range(m))
    rounds = []
    for _ in range(m - 1):
        pairs = sorted(
            (min(a, b), max(a, b))
            for a, b in zip(seats[: m // 2], seats[::-1][: m // 2], strict=True)
            if a < d and b < d
        )
        i = np.array([p[0] for p in pairs])
        j = np.array([p[1] for p in pairs])
        # Flat indices in a d x d matrix of (i, i), (j, j), (i, j), then (j, i).
        entries = np.concatenate([i * (d + 1), j * (d + 1), i * d + j, j * d + i])
        axes = np.concatenate([i, j])
        axes.flags.writeable = entries.flags.writeable = False
        rounds.append((axes, entries))
        seats = [seats[0], seats[-1], *seats[1:-1]]
    return tuple(rounds)


def _plane_rotations(
    rotated, inverse, axes, entries, rotation, identity, relaxation: float = 1.0
) -> None:
    """Write into ``rotation`` (d, d) the product of the optimal rotations in disjoint planes,
    each angle times ``relaxation`` (1: the optimal angles).

    ``rotated`` is ``M_k = D' W_k D`` (K, d, d) and ``inverse`` is ``1 / Psi_k``
    (K, d); ``axes`` and ``entries`` are one round of :func:`_round_robin`
    (the planes ``(i, j)``); ``identity`` is ``eye(d)``. One buffer for every
    round saves an allocation per round; the few numpy calls are the cost at
    small d (a sweep of d = 10 makes nine rounds). See
    :func:`common_orientation` for the angle.
    """
    m = axes.shape[0] // 2
    ends = inverse[:, axes]
    weight = ends[:, :m] - ends[:, m:]  # 1/Psi_k,i - 1/Psi_k,j
    # Per plane: sum_k w_k M_k,ii, sum_k w_k M_k,jj, sum_k w_k M_k,ij.
    n_components = rotated.shape[0]
    picked = rotated.reshape(n_components, -1)[:, entries[: 3 * m]]
    sums = np.einsum("km,kcm->cm", weight, picked.reshape(n_components, 3, m))
    # With p = (sum_ii - sum_jj) / 2 and q = sum_ij: (cos 2t, sin 2t) = -(p, q) /
    # hypot(p, q); atan2 is accurate at every angle (near t = 0 too, where a
    # half-angle formula would cancel). -p is (sum_jj - sum_ii) / 2 exactly, and
    # 0.0 - q turns -0.0 into 0.0, so p = q = 0 (every angle ties) gives t = 0: stay.
    angle = np.arctan2(0.0 - sums[2], (sums[1] - sums[0]) / 2)
    angle *= 0.5 * relaxation
    cos, sin = np.cos(angle), np.sin(angle)
    np.copyto(rotation, identity)
    rotation.flat[entries] = np.concatenate([cos, cos, -sin, sin])


def decompose(covariances: np.ndarray, model: str) -> dict[str, np.ndarray]:
    """Volume, shape and orientation of covariances of mclust model ``model``.

    As mclust's ``variance`` holds them: ``scale`` (a float for equal volume,
    (K,) for variable), ``shape`` ((D,) for equal shape, (K, D) for variable;
    determinant 1), ``orientation`` ((D, D) equal, (K, D, D) variable; columns
    are axes; absent for the axis-aligned models ``??I``), and ``sigma`` (K, D,
    D), with ``sigma[k] = scale_k · orientation_k diag(shape_k) orientation_k'``.
    Shapes are in decreasing order, except for axis-aligned models where they
    follow the features; eigenvectors are defined up to sign (and order, for
    equal eigenvalues), as in mclust. One-feature models 'E' and 'V' have
    ``sigmasq`` and ``scale`` only. O(K·D³).

    Parameters
    ----------
    covariances : ndarray of shape (K, D, D)
        Satisfying the model's constraint.
    model : str
        One of mclust's model names.

    Returns
    -------
    dict of str to ndarray

    Examples
    --------
    >>> import numpy as np
    >>> parts = decompose(np.stack([np.diag([4.0, 1.0]), np.diag([8.0, 2.0])]), "VEI")
    >>> parts["scale"], parts["shape"]
    (array([2., 4.]), array([2. , 0.5]))
    """
    sigma = np.asarray(covariances, dtype=np.float64)
    n_components = sigma.shape[0]
    if model in ("E", "V"):
        variances = sigma[:, 0, 0]
        value = variances if model == "V" else variances[0]
        return {"sigmasq": value, "scale": value, "sigma": sigma}
    volume_letter, shape_letter, orientation_letter = model
    if orientation_letter == "I":
        values = np.diagonal(sigma, axis1=1, axis2=2).copy()
        axes = None
    elif orientation_letter == "E":
        # One set of axes for all: those of a generic combination of the
        # commuting covariances (one component's axes are ambiguous where two
        # of its shape entries are equal).
        combination = np.tensordot(np.arange(1.0, n_components + 1), sigma, axes=1)
        axes = eigh_decreasing(combination)[1]
        values = np.einsum("ij,kil,lj->kj", axes, sigma, axes)
    else:
        values, axes = eigh_decreasing(sigma)
    volumes = root_det(values)
    shapes = values / volumes[:, None]
    out: dict[str, np.ndarray] = {}
    out["scale"] = volumes if volume_letter == "V" else np.asarray(volumes[0])
    out["shape"] = shapes if shape_letter == "V" else shapes[0]
    if model == "EII" or model == "VII":
        out = {"sigmasq": out["scale"], "scale": out["scale"]}
    elif axes is not None:
        out["orientation"] = axes
    out["sigma"] = sigma
    return out
