"""Kernels of mclust's eigen-decomposition ``Sigma_k = lambda_k D_k A_k D_k'``.

Pure functions on scatter matrices ``W_k = sum_n r_nk (x_n - m_k)(x_n - m_k)'``
(or their diagonals), shared by the mclust covariance families of
:mod:`gmm.covariance.mclust`. ``lambda_k`` is the volume ``|Sigma_k|^(1/d)``,
``A_k`` a diagonal shape with determinant 1 and ``D_k`` an orthogonal
orientation (Celeux & Govaert, 1995, "Gaussian parsimonious clustering
models", Pattern Recognition 28).

- :func:`equal_shape`: the fixed point of Celeux & Govaert for a shape shared by
  components of variable volume (models VEI, VEE, VEV);
- :func:`common_orientation`: the majorise-minimise (MM) iteration of Browne &
  McNicholas (2014, "Estimating common principal components in high
  dimensions", ADAC 8) for an orientation shared by components whose shapes
  vary (models EVE, VVE);
- :func:`decompose`: volume, shape and orientation of fitted covariances, laid
  out as mclust's ``variance`` holds them.

Kernels trust their inputs (float64, positive counts). Every function costs
O(K·D³) per iteration at most and O(K·D²) memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
) -> tuple[np.ndarray, np.ndarray, InnerResult]:
    """One orientation ``D`` and per-component diagonals ``Psi_k = lambda_k A_k`` (EVE, VVE).

    Alternates the exact update of the diagonals given ``D`` (VVE: ``Psi_k =
    diag(D' W_k D) / n_k``; EVE: ``A_k = diag(D' W_k D)`` scaled to det 1 and
    one ``lambda = sum_k |diag(D' W_k D)|^(1/d) / n``) with one MM step on ``D``
    for ``f(D) = sum_k tr(W_k D Psi_k^-1 D')``: ``f`` is a quadratic form in
    ``vec(D)`` whose largest eigenvalue is at most ``c = sum_k max(1/Psi_k)
    max eig(W_k)``, so on orthogonal matrices it is majorised at ``D0`` by a
    linear function, minimised by ``D = -U V'`` for the SVD ``U S V'`` of
    ``sum_k W_k D0 Psi_k^-1 - c D0``. Each step lowers the negative
    log-likelihood; it stops when that changes by at most ``tol`` relative
    (``tol · (1 + |f|)``). The MM step converges linearly, slowly where the
    axes' variances differ by orders of magnitude; warm starts (the last
    orientation) leave few steps per EM iteration.

    Parameters
    ----------
    scatters : ndarray of shape (K, D, D)
        ``W_k``.
    nk : ndarray of shape (K,)
    equal_volume : bool
        True for EVE, False for VVE.
    orientation : ndarray of shape (D, D) or None
        Warm start; None starts from the eigenvectors of ``sum_k W_k``.
    tol, max_iter : float, int

    Returns
    -------
    orientation : ndarray of shape (D, D)
        Orthogonal, columns are the axes.
    diagonals : ndarray of shape (K, D)
        ``Psi_k``; the covariances are ``D diag(Psi_k) D'``.
    result : InnerResult

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
    if orientation is None:
        orientation = eigh_decreasing(scatters.sum(axis=0))[1]
    top = np.linalg.eigvalsh(scatters)[:, -1]

    def diagonals(axes):
        projected = np.sum(axes * (scatters @ axes), axis=1)  # diag(D' W_k D)
        if not equal_volume:
            return projected / nk[:, None]
        volumes = root_det(projected)
        return projected / volumes[:, None] * (volumes.sum() / nk.sum())

    def half_gradient(axes, inverse):  # sum_k W_k D Psi_k^-1, half the gradient of f
        return np.sum((scatters @ axes) * inverse[:, None, :], axis=0)

    def polar(matrix):  # the orthogonal matrix nearest to ``matrix``
        u, _, vt = np.linalg.svd(matrix)
        return u @ vt

    psi = diagonals(orientation)
    change = np.zeros(scatters.shape[0])
    previous = float(nk @ np.log(psi).sum(axis=1))
    stretch = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for n_iter in range(1, max_iter + 1):
            if not np.all(psi > 0) or not np.all(np.isfinite(psi)):
                # A collapsed component: the caller's factorisation reports it.
                return orientation, psi, InnerResult(n_iter, None)
            inverse = 1.0 / psi
            bound = float(np.sum(top * inverse.max(axis=1)))
            gradient = half_gradient(orientation, inverse)
            # The MM step is polar(D0 - G / c). A longer step polar(D0 - s G / c),
            # s = 2, 4, ..., is kept while it lowers f, else the MM step: still
            # monotone, and many times fewer iterations where c is loose.
            step = orientation
            if stretch > 1.0:
                trial = polar(orientation - (stretch / bound) * gradient)
                if np.sum(trial * half_gradient(trial, inverse)) <= np.sum(orientation * gradient):
                    step, stretch = trial, 2.0 * stretch
                else:
                    stretch = max(1.0, stretch / 4.0)
            if step is orientation:
                step = polar(orientation - gradient / bound)
                stretch = max(stretch, 2.0)
            orientation = step
            updated = diagonals(orientation)
            # With the diagonals optimal for D, -2 logL of the M-step is
            # sum_k n_k log|Psi_k| plus a constant: stop on its relative change.
            objective = float(nk @ np.log(updated).sum(axis=1))
            change = np.max(np.abs(np.log(updated / psi)), axis=1)
            psi = updated
            if not abs(objective - previous) > tol * (1.0 + abs(objective)):
                return orientation, psi, InnerResult(n_iter, None)
            previous = objective
    return orientation, psi, InnerResult(max_iter, int(np.argmax(change)))


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
