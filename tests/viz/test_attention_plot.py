"""plot_attention writes a readable PNG of the expected size, and refuses bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from seqspeech.metrics.attention import alignment_metrics
from seqspeech.viz import figure_size, plot_attention

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def diagonal(rows, frames):
    w = np.full((rows, frames), 0.01)
    for u in range(rows):
        w[u, int((u + 0.5) * frames / rows)] = 1.0
    return w / w.sum(axis=1, keepdims=True)


def read_png(path):
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    return matplotlib.image.imread(path)


def test_png_has_the_expected_size_and_aspect(tmp_path):
    w = diagonal(6, 120)
    m = alignment_metrics(w)
    out = plot_attention(torch.tensor(w), tmp_path / "wide.png", tokens=list("hello") + ["<eos>"],
                         frame_shift_s=0.04, title="utt-1", metrics=m, dpi=50)
    assert out == tmp_path / "wide.png"
    image = read_png(out)
    width, height = figure_size(6, 120)
    assert image.shape[:2] == (round(height * 50), round(width * 50))
    assert image.shape[1] > image.shape[0]  # many frames, few tokens: wide
    tall = read_png(plot_attention(diagonal(50, 20), tmp_path / "sub" / "tall.png", dpi=50))  # folder created
    assert tall.shape[0] > tall.shape[1]
    assert float(image[..., :3].std()) > 0.05  # something was drawn


def test_dict_metrics_and_overwrite(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"old")
    plot_attention(diagonal(4, 10), path, metrics={"focus_rate": 0.9, "note": "ok", "skip": False})
    read_png(path)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # the atomic write left no temp file


@pytest.mark.parametrize(
    "weights, match",
    [
        (np.zeros((0, 4)), "empty"),
        (np.array([[0.5, np.nan]]), "NaN"),
        (np.ones(4), "2-D"),
        (np.array([[1.0, -1.0]]), ">= 0"),
    ],
)
def test_bad_weights(tmp_path, weights, match):
    with pytest.raises(ValueError, match=match):
        plot_attention(weights, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_bad_arguments(tmp_path):
    w = diagonal(3, 9)
    with pytest.raises(ValueError, match="3 attention rows"):
        plot_attention(w, tmp_path / "x.png", tokens=["a", "b"])
    with pytest.raises(ValueError, match="PNG"):
        plot_attention(w, tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="frame_shift_s"):
        plot_attention(w, tmp_path / "x.png", frame_shift_s=0.0)
    with pytest.raises(ValueError, match="rows"):
        plot_attention(w, tmp_path / "x.png", metrics=alignment_metrics(diagonal(4, 9)))


def test_unwritable_paths(tmp_path):
    w = diagonal(3, 9)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(OSError, match="dir.png"):
        plot_attention(w, tmp_path / "dir.png")
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError, match="cannot write"):
        plot_attention(w, tmp_path / "file" / "x.png")
    if os.geteuid() != 0:  # root ignores permissions
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(OSError, match="cannot write"):
                plot_attention(w, locked / "x.png")
        finally:
            locked.chmod(0o700)
