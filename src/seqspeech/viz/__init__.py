"""Plots (PNG, matplotlib's Agg canvas, imported lazily): attention and alignment heatmaps."""

from seqspeech.viz.attention import figure_size, plot_attention

__all__ = ["figure_size", "plot_attention"]
