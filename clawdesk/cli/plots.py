"""Curves a person would rather look at than read: loss and reward per step of a training run,
in the terminal (plotext) and as a PNG (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CURVES = (("loss", "loss"), ("reward_mean", "reward mean"), ("opd_adv_mean", "OPD advantage"),
          ("kl_old", "KL to π_old"))


def _series(steps: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for s in steps:
        if s.get(key) is not None:
            xs.append(int(s.get("step", len(xs) + 1)))
            ys.append(float(s[key]))
    return xs, ys


def terminal_plot(steps: list[dict[str, Any]], width: int = 72, height: int = 10) -> str:
    """Loss and reward mean per step as small text plots, one above the other (plotext 6's
    figure API; colour codes stripped so the text reads the same in a pipe)."""
    import plotext as plt

    panels = []
    for key, label in CURVES[:2]:
        xs, ys = _series(steps, key)
        if not xs:
            continue
        fig = plt.figure
        fig.clear()
        fig.plot_size(width, height)
        fig.theme("clear")
        fig.draw(fig.signal(xs, ys, marker="braille" if len(xs) > 24 else "dot"))
        fig.title(f"{label} per step")
        panels.append(plt.uncolorize(fig.build()))
    return "\n".join(panels)


def png_plot(steps: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Every available curve as a small-multiples PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [(k, label) for k, label in CURVES if _series(steps, k)[0]]
    fig, axes = plt.subplots(len(present) or 1, 1, figsize=(7, 2.2 * max(1, len(present))), sharex=True,
                             squeeze=False)
    for ax, (key, label) in zip(axes[:, 0], present):
        xs, ys = _series(steps, key)
        ax.plot(xs, ys, marker="o", markersize=3)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("optimizer step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    path.chmod(0o600)
    return path
