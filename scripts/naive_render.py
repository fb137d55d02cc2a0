"""The naive path the benchmarks measure the app against: nilearn's glass brain and
orthogonal slices of one map, rendered to PNG (what a user of the field would otherwise
run for each change of view). Shared by scripts/bench_ui.py and scripts/bench_open.py."""

from __future__ import annotations

import io
from typing import Any


def nilearn_render(img: Any, threshold: float, cut: Any) -> int:
    """Glass brain and orthogonal slices of one map to PNG (Agg); bytes written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nilearn import plotting

    buf = io.BytesIO()
    d = plotting.plot_glass_brain(img, threshold=threshold, plot_abs=False, colorbar=True)
    d.frame_axes.figure.savefig(buf, format="png")
    d.close()
    d = plotting.plot_stat_map(img, threshold=threshold, cut_coords=cut, colorbar=True)
    d.frame_axes.figure.savefig(buf, format="png")
    d.close()
    plt.close("all")
    return buf.tell()
