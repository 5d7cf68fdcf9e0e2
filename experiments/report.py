"""The self-contained HTML report: a front page, one section per experiment, a footer.

Figures are embedded as ``data:`` URIs, so the single file can be mailed.

The front page reads these metrics, when present:

- ``agreement.metrics["agreement_rows"]``: rows with ``data``, ``covariance_type``,
  ``seed`` (default start only), ``max |Δ parameter|``, ``|Δ mean log-lik|``,
  ``ARI gmm vs scikit-learn`` and ``ok``;
- ``bench.metrics["speed_rows"]`` (else ``agreement.metrics["speed_rows"]``): a list
  of rows (column to value), each with an optional boolean ``ok``. Without
  ``speed_rows`` a bench result contributes its first table.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

from .result import ExperimentResult, png_data_uri
from .runner import OWN_THREADS

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1b1b1b; background: #fafafa; line-height: 1.45; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 36px 0 6px; padding-top: 12px; border-top: 1px solid #ddd; }
h3 { font-size: 15px; margin: 18px 0 6px; color: #333; }
.sub { color: #555; margin: 0 0 18px; }
.front { display: grid; grid-template-columns: 1fr; gap: 18px; }
.card { background: white; border: 1px solid #e2e2e2; border-radius: 8px; padding: 12px 18px; }
.card h2 { border: 0; margin: 0 0 4px; padding: 0; font-size: 18px; }
.card p { margin: 2px 0 8px; color: #444; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 10px; background: white; }
th, td { border: 1px solid #e0e0e0; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f1f3f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.ok, td.bad, td.skip { white-space: nowrap; }
.ok { background: #d8f0dc; color: #0b5d1e; font-weight: 600; }
.bad { background: #f8d7d7; color: #8a1111; font-weight: 600; }
.skip { background: #eeeeee; color: #555; }
.verdict { padding: 8px 12px; border-radius: 6px; margin: 10px 0; }
figure { margin: 12px 0; }
figure img { max-width: 100%; border: 1px solid #eee; background: white; }
figcaption { font-size: 13px; color: #555; }
pre { background: #fff3f3; border: 1px solid #f0c0c0; padding: 8px; overflow-x: auto;
      font-size: 12px; }
footer { margin-top: 40px; font-size: 13px; color: #444; border-top: 1px solid #ddd; }
.scroll { overflow-x: auto; }
a { color: #0060a0; }
"""

STATUS_CLASS = {"ok": "ok", "finding": "bad", "error": "bad", "skipped": "skip"}
STATUS_TEXT = {"ok": "✓ ok", "finding": "✗ finding", "error": "✗ error", "skipped": "skipped"}


def _e(value) -> str:
    return html.escape(str(value))


def _cell(value) -> str:
    if isinstance(value, bool):
        return f'<td class="{"ok" if value else "bad"}">{"✓ yes" if value else "✗ no"}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    if isinstance(value, float):
        return f'<td class="num">{format_number(value)}</td>'
    if value is None:
        return "<td>—</td>"
    return f"<td>{_e(value)}</td>"


def format_number(value: float) -> str:
    """Large values with one decimal, ordinary ones to 4 significant digits, tiny ones
    in scientific notation (the differences between gmm and scikit-learn are tiny)."""
    size = abs(value)
    if value != value:
        return "nan"
    if size >= 1000:
        return f"{value:,.1f}"
    if size >= 1e-3 or size == 0:
        return f"{value:.4g}"
    return f"{value:.2e}"


def html_table(rows: list[dict]) -> str:
    """A table from rows of column → value; a boolean ``ok`` column becomes a colored cell."""
    if not rows:
        return "<p><em>(empty table)</em></p>"
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    head = "".join(f"<th>{_e('verdict' if c == 'ok' else c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


# ------------------------------------------------------------------ front page
def agreement_summary(agreement: ExperimentResult | None, status: str | None) -> str:
    """Worst differences per data set and kind of start, from the agreement experiment."""
    if agreement is None or status in ("error", "skipped"):
        why = "did not run" if agreement is None else status
        return f'<p class="verdict bad">The agreement experiment {why}: no answer.</p>'
    fits = agreement.metrics.get("agreement_rows", [])
    seeds = ", ".join(str(s) for s in dict.fromkeys(r["seed"] for r in fits if "seed" in r))
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in fits:
        start = f"default, seeds {seeds}" if "seed" in row else "identical, tol = 0"
        groups.setdefault((row["data"], start), []).append(row)
    rows = []
    for (data, start), members in groups.items():
        rows.append(
            {
                "data": data,
                "start": start,
                "fits": len(members),
                "covariance types": ", ".join(dict.fromkeys(m["covariance_type"] for m in members)),
                "largest |Δ parameter|": max(m["max |Δ parameter|"] for m in members),
                "largest |Δ mean log-lik|": max(m["|Δ mean log-lik|"] for m in members),
                "smallest ARI gmm vs sklearn": min(m["ARI gmm vs scikit-learn"] for m in members),
                "ok": all(m["ok"] for m in members),
            }
        )
    return html_table(rows) + _verdict(agreement)


def speed_summary(results: dict, statuses: dict) -> str:
    """Speed from the bench experiment when it ran, else from the agreement timings."""
    bench = results.get("bench")
    if bench is not None and statuses.get("bench") in ("ok", "finding"):
        rows = bench.metrics.get("speed_rows") or next(iter(bench.tables.values()), [])
        return (
            "<p>From the <a href='#bench'>bench</a> experiment.</p>"
            + html_table(rows)
            + _verdict(bench)
        )
    agreement = results.get("agreement")
    if agreement is None or statuses.get("agreement") in ("error", "skipped"):
        return '<p class="verdict bad">Neither bench nor agreement ran: no answer.</p>'
    note = (
        "<p>bench has not run, so these are the per-iteration times of the "
        "<a href='#agreement'>agreement</a> fits (identical starts, one BLAS thread "
        "each; speed-up = scikit-learn time / gmm time, green when gmm is at least as "
        "fast).</p>"
    )
    return note + html_table(agreement.metrics.get("speed_rows", []))


def findings_summary(results: list[ExperimentResult], statuses: dict) -> str:
    rows = []
    for r in results:
        status = statuses[r.name]
        rows.append(
            f'<tr><td><a href="#{_e(r.name)}">{_e(r.name)}</a></td>'
            f'<td class="{STATUS_CLASS[status]}">{STATUS_TEXT[status]}</td>'
            f"<td>{_e(r.verdict)}</td>"
            f'<td class="num">{r.seconds:.1f}</td></tr>'
        )
    head = "<tr><th>experiment</th><th>status</th><th>verdict</th><th>seconds</th></tr>"
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def _verdict(result: ExperimentResult) -> str:
    cls = "ok" if result.ok and result.error is None else "bad"
    return f'<p class="verdict {cls}">{_e(result.verdict)}</p>'


# -------------------------------------------------------------------- sections
def section(result: ExperimentResult, status: str) -> str:
    parts = [
        f'<h2 id="{_e(result.name)}">{_e(result.title)} <small>({_e(result.name)})</small></h2>'
    ]
    if status == "skipped":
        parts.append(f'<p class="verdict skip">{_e(result.verdict)}</p>')
        return "\n".join(parts)
    if result.description:
        parts.append(f"<p>{_e(result.description)}</p>")
    if result.error is not None:
        parts.append(_verdict(result))
        parts.append(f"<pre>{_e(result.error)}</pre>")
        return "\n".join(parts)
    parts.append(_verdict(result))
    for caption, png in result.figures.items():
        parts.append(
            f'<figure><img src="{png_data_uri(png)}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )
    for caption, rows in result.tables.items():
        parts.append(f"<h3>{_e(caption)}</h3>{html_table(rows)}")
    parts.append(f"<p class='sub'>Wall time: {result.seconds:.1f} s.</p>")
    return "\n".join(parts)


def footer(env: dict, results: list[ExperimentResult], total: float) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    machine = env["machine"]
    blas = machine.get("blas")
    if isinstance(blas, list):
        blas = (
            "; ".join(
                f"{b['internal_api']} {b['version']} ({b['num_threads']} threads, "
                f"{b.get('architecture')})"
                for b in blas
            )
            or "none found"
        )
    times = ", ".join(f"{r.name} {r.seconds:.1f} s" for r in results)
    return (
        "<footer>"
        f"<p><b>Versions:</b> {_e(versions)}.</p>"
        f"<p><b>Machine:</b> {machine['cores']} cores, {_e(machine['platform'])}; "
        f"BLAS: {_e(blas)}. Experiments run with one BLAS and one OpenMP thread, "
        f"except {_e(', '.join(sorted(OWN_THREADS)))}, which set their own.</p>"
        f"<p><b>Wall time:</b> {_e(times)}; total {total:.1f} s.</p>"
        "</footer>"
    )


def write_report(path: Path, results, statuses, env, quick: bool, total: float) -> None:
    """Write the whole report to ``path``."""
    by_name = {r.name: r for r in results}
    mode = "quick mode (small versions)" if quick else "full run"
    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    front = (
        '<section class="front">'
        '<div class="card"><h2>Does gmm agree with scikit-learn?</h2>'
        "<p>Largest differences of the fitted models, per data set and start.</p>"
        f"{agreement_summary(by_name.get('agreement'), statuses.get('agreement'))}</div>"
        '<div class="card"><h2>How much faster is it?</h2>'
        f"{speed_summary(by_name, statuses)}</div>"
        '<div class="card"><h2>What did each experiment find?</h2>'
        f"{findings_summary(results, statuses)}</div>"
        "</section>"
    )
    body = "\n".join(section(r, statuses[r.name]) for r in results)
    document = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>gmm experiments</title><style>{CSS}</style></head><body><main>"
        "<h1>gmm experiments</h1>"
        f"<p class='sub'>Gaussian mixtures written from scratch, checked against "
        f"scikit-learn. {_e(mode)}, {when}, {total:.0f} s in all.</p>"
        f"{front}{body}{footer(env, results, total)}</main></body></html>\n"
    )
    Path(path).write_text(document, encoding="utf-8")
