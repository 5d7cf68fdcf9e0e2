"""What every experiment returns, and how figures travel into the report."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ExperimentResult:
    """The outcome of one experiment.

    Attributes
    ----------
    name : str
        Module name, e.g. ``"blobs"``.
    title : str
        Section heading in the report.
    description : str
        What the experiment shows (a short paragraph).
    verdict : str
        One line computed from the experiment's own numbers, never canned text.
    ok : bool
        Whether the verdict is a pass (green) or a finding against us (red).
    figures : dict of str to bytes
        PNG bytes, keyed by a caption.
    tables : dict of str to list of dict
        Each table is a list of rows (column name to value).
    metrics : dict
        Numbers for results.json (JSON-serialisable).
    """

    name: str
    title: str
    description: str = ""
    verdict: str = ""
    ok: bool = True
    figures: dict[str, bytes] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


def figure_png(fig, dpi: int = 110) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    """A ``data:`` URI embedding PNG bytes, for a self-contained HTML report."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
