"""Figures and widgets for the notebooks: one module per notebook, plus the shared `style`.

style         captions (profile, data, hardware), saving figures under results/figures, PNG
              rendering for widgets, masks over frames (overlay)
architecture  Table 1 measured, parameter counts, how a deformable convolution samples
training      the data sheet (the benchmark's contact sheet), loss curves, reconstructions,
              flow fields (row 108) as colour and arrows
fig2          the supplementary's Fig. 2: embedding PCA and sampling locations (rows 106-109)
"""
from .style import Run, figure, setup

__all__ = ["Run", "figure", "setup"]
