"""Experiment 3: the covariance types on the stretched blobs, against scikit-learn."""

from __future__ import annotations

from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gmm import GaussianMixture

from . import style
from .result import ExperimentResult, figure_png
from .stretched import load_stretched
from .versus_sklearn import shared_covariance_types

TITLE = "Covariance types on the stretched blobs"
DESCRIPTION = (
    "The same stretched data fitted with each covariance_type: 'spherical' (one "
    "variance per component, round), 'diag' (axis-aligned ellipses), 'full' (any "
    "ellipse per component) and 'tied' (one ellipse shared by all components). "
    "The stretch is one linear map applied to four equal round blobs, so the truth "
    "is a 'tied' model; BIC (lower is better) should prefer it."
)

# Every type is compared with scikit-learn, so only those it has too (today: all four).
TYPES = shared_covariance_types()


def run(quick: bool = False) -> ExperimentResult:
    X, y = load_stretched()
    fig, axes = style.figure(len(TYPES), width=3.6, height=3.6, sharex=True, sharey=True)
    rows = []
    bic_gap = 0.0
    for ax, kind in zip(axes.ravel(), TYPES, strict=True):
        ours = GaussianMixture(4, covariance_type=kind, random_state=42).fit(X)
        theirs = SkGaussianMixture(4, covariance_type=kind, random_state=42).fit(X)
        labels = ours.predict(X)
        ari = adjusted_rand_score(y, labels)
        bic, bic_sk = float(ours.bic(X)), float(theirs.bic(X))
        bic_gap = max(bic_gap, abs(bic - bic_sk))
        mapping = style.label_mapping(y, labels)
        style.scatter_clusters(ax, X, mapping[labels], size=8)
        style.draw_ellipses(ax, ours, colors=style.cluster_colors(mapping), n_std=(1, 2))
        style.label_axes(ax, f"{kind} (ARI {ari:.2f})")
        ax.set_aspect("equal", adjustable="box")
        rows.append(
            {
                "covariance_type": kind,
                "ARI vs truth": round(ari, 4),
                "mean log-likelihood": round(ours.score(X), 4),
                "BIC (gmm)": round(bic, 2),
                "BIC (scikit-learn)": round(bic_sk, 2),
                "ARI gmm vs scikit-learn": round(adjusted_rand_score(labels, theirs.predict(X)), 4),
            }
        )
    for ax in axes[0, 1:]:
        ax.set_ylabel("")
    figures = {"1 and 2 σ ellipses of each covariance type": figure_png(fig)}

    best = min(rows, key=lambda r: r["BIC (gmm)"])
    best_sk = min(rows, key=lambda r: r["BIC (scikit-learn)"])
    same_labels = all(r["ARI gmm vs scikit-learn"] == 1.0 for r in rows)
    worst = min(rows, key=lambda r: r["ARI vs truth"])
    ok = (
        best["covariance_type"] == best_sk["covariance_type"]
        and bic_gap < 1e-6 * abs(best["BIC (gmm)"])
        and same_labels
    )
    verdict = (
        f"BIC prefers '{best['covariance_type']}' ({best['BIC (gmm)']:.1f}; scikit-learn: "
        f"'{best_sk['covariance_type']}'); '{worst['covariance_type']}' clusters worst "
        f"(ARI {worst['ARI vs truth']:.2f}); largest BIC gap to scikit-learn {bic_gap:.2g}"
        f"{', same labels for every type' if same_labels else ', labels differ for some type'}."
    )
    return ExperimentResult(
        name="covariance_types",
        title=TITLE,
        description=DESCRIPTION,
        verdict=verdict,
        ok=bool(ok),
        figures=figures,
        tables={"Fit of each covariance type": rows},
        metrics={
            "best_bic_type": best["covariance_type"],
            "best_bic_type_sklearn": best_sk["covariance_type"],
            "max_bic_gap": bic_gap,
            "rows": rows,
        },
    )
