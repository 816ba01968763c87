"""Budget curves as PNG (matplotlib, Agg): best train accuracy so far, and the test accuracy of
that best-so-far template (scored after the run, never used to choose), against scorer queries,
and best train accuracy against images scored (racing's cost) and LLM tokens; per method, the
mean over seeds with a min-max band (one run: its line alone).
Panels without data are left out."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _step(points: Sequence[dict[str, Any]], x_key: str, y_key: str, xs: np.ndarray) -> np.ndarray:
    """The curve's value at each x: the last point at or before it (NaN before the first)."""
    out = np.full(len(xs), np.nan)
    px = np.array([p.get(x_key, 0) for p in points], dtype=float)
    py = np.array([np.nan if p[y_key] is None else p[y_key] for p in points], dtype=float)
    for i, x in enumerate(xs):
        idx = np.flatnonzero(px <= x)
        if len(idx):
            out[i] = py[idx[-1]]
    return out


PANELS = (("queries", "best_train", "best train accuracy so far"),
          ("queries", "best_test", "test accuracy of best-so-far (post hoc)"),
          ("images", "best_train", "best train accuracy so far"),
          ("tokens", "best_train", "best train accuracy so far"))
X_LABELS = {"queries": "scorer queries", "images": "images scored", "tokens": "LLM tokens"}


def _lines(curves: dict[str, list[list[dict[str, Any]]]], x_key: str, y_key: str
           ) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """(method, xs, ys in percent with one row per run, number of runs) for each method with data."""
    out = []
    for method, runs in curves.items():
        runs = [r for r in runs if r]
        if not runs:
            continue
        top = max(max(p.get(x_key, 0) for p in r) for r in runs)  # stores before images: no panel
        if top <= 0:
            continue
        xs = np.arange(1, top + 1) if x_key == "queries" else np.linspace(0, top, 200)
        ys = np.array([_step(r, x_key, y_key, xs) for r in runs]) * 100
        if not np.all(np.isnan(ys)):
            out.append((method, xs, ys, len(runs)))
    return out


def curve_title(title: str, several: bool) -> str:
    """The figure's title: what the lines and bands are (a single run has no mean and no band)."""
    return title + ("  (mean over seeds, band: min-max)" if several else "  (one run)")


def plot_curves(curves: dict[str, list[list[dict[str, Any]]]], path: Path, title: str) -> Path | None:
    """``curves``: method -> one curve per seed. Up to four panels (train and test vs queries, train
    vs images scored and vs tokens); a panel without data (no LLM tokens, no test split, a store
    from before images were counted) is left out, and None is returned
    when no panel has any. With one run per method the lines are that run, with no band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(x_key, label, lines) for x_key, y_key, label in PANELS
              if (lines := _lines(curves, x_key, y_key))]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    # One colour per method in every panel (a panel skips methods it has no data for).
    palette = [plt.get_cmap("tab20")(i / 20) for i in range(0, 20, 2)] + \
        [plt.get_cmap("tab20")(i / 20) for i in range(1, 20, 2)]
    colours = {method: palette[i % len(palette)] for i, method in enumerate(curves)}
    several = any(n > 1 for _, _, lines in panels for *_, n in lines)
    for ax, (x_key, label, lines) in zip(axes[0], panels, strict=True):
        for method, xs, ys, n in lines:
            with warnings.catch_warnings():  # NaN before a run's first point: "mean of empty slice"
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(ys, axis=0)
                lo, hi = np.nanmin(ys, axis=0), np.nanmax(ys, axis=0)
            ax.plot(xs, mean, label=method, lw=1.6, color=colours[method])
            if n > 1:
                ax.fill_between(xs, lo, hi, color=colours[method], alpha=0.15)
        ax.set_xlabel(X_LABELS[x_key])
        ax.set_ylabel(f"{label} (%)")
        ax.grid(alpha=0.3)

    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle(curve_title(title, several), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
