"""Experiment 5: choosing the number of components on the moons with AIC, BIC and ICL."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gmm import GaussianMixture

from . import style
from .moons_density import load_moons
from .result import ExperimentResult, figure_png

TITLE = "Moons: choosing the number of components"
DESCRIPTION = (
    "AIC, BIC and ICL (lower is better) of full-covariance mixtures with K = 1…20 "
    "components (1…10 in quick mode) on the 200 moon points, ours and scikit-learn's "
    "with the same seed. "
    "AIC rewards fit and follows the density; BIC penalises parameters harder; ICL "
    "adds twice the entropy of the responsibilities to BIC, so it also penalises "
    "overlapping components. scikit-learn has no ICL: we compute it from its "
    "predict_proba as BIC − 2·Σ r·log r (the same formula gmm uses). Circles (gmm) "
    "and squares (scikit-learn) mark the minima."
)

CRITERIA = ("aic", "bic", "icl")


def sklearn_icl(model, X) -> float:
    """ICL of a scikit-learn mixture: BIC plus twice the entropy of its responsibilities."""
    resp = model.predict_proba(X)
    # 0·log 0 is 0; the clip only keeps log finite where r is exactly 0.
    entropy = -np.sum(resp * np.log(np.clip(resp, 1e-300, None)))
    return float(model.bic(X) + 2 * entropy)


def criterion_curves(X, ks, random_state=0):
    """AIC, BIC and ICL for each K, for gmm and for scikit-learn."""
    curves = {lib: {c: [] for c in CRITERIA} for lib in ("gmm", "scikit-learn")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in ks:
            ours = GaussianMixture(k, covariance_type="full", random_state=random_state).fit(X)
            theirs = SkGaussianMixture(k, covariance_type="full", random_state=random_state)
            theirs.fit(X)
            for name, value in (("aic", ours.aic(X)), ("bic", ours.bic(X)), ("icl", ours.icl(X))):
                curves["gmm"][name].append(float(value))
            curves["scikit-learn"]["aic"].append(float(theirs.aic(X)))
            curves["scikit-learn"]["bic"].append(float(theirs.bic(X)))
            curves["scikit-learn"]["icl"].append(sklearn_icl(theirs, X))
    return curves


def run(quick: bool = False) -> ExperimentResult:
    X = load_moons(0)
    ks = np.arange(1, 11 if quick else 21)
    curves = criterion_curves(X, ks)

    fig, axes = style.figure(1, width=7.5, height=4.4)
    ax = axes[0, 0]
    colors = dict(zip(CRITERIA, style.PALETTE[:3], strict=True))
    best = {}
    # Ours as lines, scikit-learn's as small crosses on top: where they agree the
    # crosses sit on the lines.
    for lib, line, marker in (("gmm", "-", ""), ("scikit-learn", "", "x")):
        for crit in CRITERIA:
            values = np.asarray(curves[lib][crit])
            ax.plot(
                ks,
                values,
                ls=line or "none",
                marker=marker or None,
                ms=6,
                c=colors[crit],
                lw=1.5,
                label=f"{crit.upper()} ({lib})",
            )
            i = int(np.argmin(values))
            best[lib, crit] = int(ks[i])
            big, size = ("o", 17) if lib == "gmm" else ("s", 10)
            ax.plot(ks[i], values[i], marker=big, ms=size, c=colors[crit], mfc="none", mew=1.5)
    ax.set_xticks(ks)
    style.label_axes(
        ax,
        "AIC, BIC and ICL on the moons (minima: ○ gmm, □ scikit-learn)",
        "number of components K",
        "criterion value (lower is better)",
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figures = {"AIC, BIC and ICL against K, ours and scikit-learn's": figure_png(fig)}

    rows = []
    for crit in CRITERIA:
        ours, theirs = np.asarray(curves["gmm"][crit]), np.asarray(curves["scikit-learn"][crit])
        rows.append(
            {
                "criterion": crit.upper(),
                "best K (gmm)": best["gmm", crit],
                "best K (scikit-learn)": best["scikit-learn", crit],
                "minimum (gmm)": round(float(ours.min()), 2),
                "minimum (scikit-learn)": round(float(theirs.min()), 2),
                "largest |gmm − scikit-learn| over K": float(f"{np.abs(ours - theirs).max():.3g}"),
            }
        )
    same = all(r["best K (gmm)"] == r["best K (scikit-learn)"] for r in rows)
    gap = max(r["largest |gmm − scikit-learn| over K"] for r in rows)
    ok = same and gap < 1e-6 * max(abs(r["minimum (gmm)"]) for r in rows) + 1e-6
    picks = ", ".join(f"{r['criterion']} K={r['best K (gmm)']}" for r in rows)
    verdict = (
        f"Minima: {picks}; scikit-learn's minima "
        f"{'are the same' if same else 'differ'} and the curves differ by at most {gap:.2g}."
    )
    return ExperimentResult(
        name="moons_selection",
        title=TITLE,
        description=DESCRIPTION,
        verdict=verdict,
        ok=bool(ok),
        figures=figures,
        tables={"Minima of each criterion": rows},
        metrics={
            "ks": ks.tolist(),
            "curves": curves,
            "best": {f"{lib}/{crit}": k for (lib, crit), k in best.items()},
            "max_curve_gap": gap,
        },
    )
