"""Experiment 4: a Gaussian mixture as a density estimator on two moons."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_moons

from gmm import GaussianMixture

from . import style
from .result import ExperimentResult, figure_png

TITLE = "Moons: a mixture as a density estimator"
DESCRIPTION = (
    "Two interleaved half-moons (200 points, noise 0.05). Two Gaussians cannot "
    "follow the curved shapes, but sixteen can: used as a density estimator rather "
    "than a clustering, the mixture tiles each moon with small ellipses, and "
    "sampling from it gives new points that look like the data. We measure the fit "
    "on 200 fresh moons (held-out log-likelihood) and how many of 400 generated "
    "points fall within 3 noise widths of the true moon arcs."
)

NOISE = 0.05
NEAR = 3 * NOISE
N_GENERATED = 400


def load_moons(random_state: int = 0):
    X, _ = make_moons(200, noise=NOISE, random_state=random_state)
    return X


def moon_arcs(n: int = 2000) -> np.ndarray:
    """Points along the two noise-free arcs that make_moons perturbs."""
    t = np.linspace(0, np.pi, n)
    upper = np.column_stack([np.cos(t), np.sin(t)])
    lower = np.column_stack([1 - np.cos(t), 0.5 - np.sin(t)])
    return np.vstack([upper, lower])


def distance_to_arcs(X) -> np.ndarray:
    """Distance from each point to the nearest point of the noise-free arcs."""
    arcs = moon_arcs()
    return np.sqrt(((X[:, None, :] - arcs[None, :, :]) ** 2).sum(axis=2)).min(axis=1)


def run(quick: bool = False) -> ExperimentResult:
    X = load_moons(0)
    X_new = load_moons(1)
    arcs = moon_arcs()
    models = {k: GaussianMixture(k, covariance_type="full", random_state=0).fit(X) for k in (2, 16)}
    generated, _ = models[16].sample(N_GENERATED, random_state=0)
    near_generated = float(np.mean(distance_to_arcs(generated) < NEAR))
    near_data = float(np.mean(distance_to_arcs(X) < NEAR))

    fig, axes = style.figure(3, width=4.3, height=3.4, sharex=True, sharey=True)
    for ax, (k, model) in zip(axes[0, :2], models.items(), strict=True):
        ax.scatter(*X.T, s=8, c=style.TRUTH, linewidths=0, label="data")
        style.draw_ellipses(ax, model, colors=style.OURS, n_std=(1, 2), label="1, 2 σ")
        style.label_axes(ax, f"{k} components (held-out LL {model.score(X_new):.2f})")
        ax.legend(loc="upper right")
    ax = axes[0, 2]
    ax.plot(*arcs[: len(arcs) // 2].T, c=style.TRUTH, lw=1, label="noise-free arcs")
    ax.plot(*arcs[len(arcs) // 2 :].T, c=style.TRUTH, lw=1)
    ax.scatter(*generated.T, s=8, c=style.PALETTE[2], linewidths=0, label="generated")
    style.label_axes(ax, f"{N_GENERATED} points sampled from 16 components")
    ax.legend(loc="upper right")
    for ax in axes.ravel():
        ax.set_aspect("equal", adjustable="box")
    figures = {"Two against sixteen components, and new points from sixteen": figure_png(fig)}

    rows = [
        {
            "components": k,
            "train mean log-likelihood": round(model.score(X), 3),
            "held-out mean log-likelihood": round(model.score(X_new), 3),
            "BIC": round(float(model.bic(X)), 1),
        }
        for k, model in models.items()
    ]
    gain = models[16].score(X_new) - models[2].score(X_new)
    ok = gain > 0 and near_generated >= near_data - 0.05
    verdict = (
        f"16 components beat 2 on fresh moons by {gain:.2f} nats per point; "
        f"{near_generated:.0%} of {N_GENERATED} generated points lie within {NEAR:.2f} "
        f"of the moon arcs (the real data: {near_data:.0%})."
    )
    return ExperimentResult(
        name="moons_density",
        title=TITLE,
        description=DESCRIPTION,
        verdict=verdict,
        ok=bool(ok),
        figures=figures,
        tables={"Fit of 2 and 16 components": rows},
        metrics={
            "heldout_gain_16_vs_2": gain,
            "fraction_generated_near_arcs": near_generated,
            "fraction_data_near_arcs": near_data,
            "rows": rows,
        },
    )
