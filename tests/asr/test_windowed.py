"""WindowedASR's window bookkeeping: segments in input order, times on the input's clock, and ``on_segments``
telling each input's segments in order as soon as they and all before them are decoded."""

from __future__ import annotations

import numpy as np

from seqspeech.asr.transcribe import Segment
from seqspeech.asr.windowed import WindowedASR


class CountingASR(WindowedASR):
    """Says how many samples each window had; records the batches it was given."""

    window_s = 1.0
    family = "fake"

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def decode_windows(self, pieces: list[np.ndarray], **options) -> list[Segment]:
        self.batches.append([len(p) for p in pieces])
        return [Segment(0.0, len(p) / 16000, f"w{len(p)}", [], 0.0, 0.0, 1.0, 0.0) for p in pieces]


def test_on_segments_tells_each_input_in_order_as_windows_finish() -> None:
    asr = CountingASR()
    a = np.full(16000 * 3 + 8000, 0.1, np.float32)  # windows of 1, 1, 1 and 0.5 s
    b = np.full(12000, 0.1, np.float32)  # one window of 0.75 s
    told: list[tuple[int, list[str]]] = []
    out = asr.transcribe_batch([a, b], batch_size=2, on_segments=lambda i, segs: told.append(
        (i, [s.text for s in segs])))
    # longest windows first: a's three whole seconds, then b's 0.75 s and a's last 0.5 s
    assert asr.batches == [[16000, 16000], [16000, 12000], [8000]]
    assert told == [(0, ["w16000", "w16000"]), (0, ["w16000"]), (1, ["w12000"]), (0, ["w8000"])]
    assert [s.text for s in out[0].segments] == [t for i, texts in told if i == 0 for t in texts]
    assert [s.start for s in out[0].segments] == [0.0, 1.0, 2.0, 3.0]


def test_on_segments_waits_for_an_earlier_window() -> None:
    asr = CountingASR()
    a = np.full(16000 + 4000, 0.1, np.float32)  # 1 s, then 0.25 s: the short window is decoded last
    c = np.full(16000, 0.1, np.float32)
    told: list[tuple[int, list[str]]] = []
    asr.transcribe_batch([a, c], batch_size=1, on_segments=lambda i, segs: told.append(
        (i, [s.text for s in segs])))
    assert told[0] == (0, ["w16000"]) and (0, ["w4000"]) in told and (1, ["w16000"]) in told
    assert told.index((0, ["w16000"])) < told.index((0, ["w4000"]))
