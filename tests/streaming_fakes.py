"""A fake streaming engine shared by the streaming tests (tests/asr/test_streaming.py, tests/test_cli_stream.py)."""

from __future__ import annotations

import numpy as np

from seqspeech.asr.streaming import Hypothesis

SR = 16000
FRAME = 160  # the fake engine's 10 ms frames


class BurstEngine:
    """A fake recogniser: each run of loud 10 ms frames is one token whose id grows with the run's length
    (``frames // 10``: 0 "a", 1 "b", ...), so the partial text changes while a burst lasts. A token's time is its
    burst's last loud frame's end; ``last_speech`` the last loud frame's end. ``calls`` logs each decode call's
    batch size and chunk lengths (test instrumentation; no stream state lives here)."""

    sample_rate = SR

    def __init__(self, chunk_samples: int = 1600, threshold: float = 0.05) -> None:
        self.chunk_samples = chunk_samples
        self.threshold = threshold
        self.calls: list[tuple[int, tuple[int, ...], tuple[bool, ...]]] = []

    def new_state(self) -> dict:
        return {"tail": np.zeros(0, np.float32), "frames": 0, "tokens": [], "times": [], "last": None,
                "burst": 0, "ended": 0}

    def decode(self, states, chunks, final):
        self.calls.append((len(states), tuple(len(c) for c in chunks), tuple(final)))
        out = []
        for state, chunk, last in zip(states, chunks, final):
            assert chunk.dtype == np.float32 and chunk.ndim == 1
            assert len(chunk) == self.chunk_samples or (last and len(chunk) < self.chunk_samples)
            buf = np.concatenate([state["tail"], chunk])
            n = len(buf) // FRAME
            for k in range(n):
                frame = buf[k * FRAME : (k + 1) * FRAME]
                state["frames"] += 1
                end = state["frames"] * FRAME / SR
                if np.sqrt(np.mean(frame.astype(np.float64) ** 2)) > self.threshold:
                    if state["burst"] == 0:
                        state["tokens"].append(0)
                        state["times"].append(end)
                    state["burst"] += 1
                    state["tokens"][-1] = min(state["burst"] // 10, 25)
                    state["times"][-1] = state["last"] = end
                else:
                    state["burst"] = 0
            state["tail"] = buf[n * FRAME :]
            out.append(self._hypothesis(state))
        return out

    def end_utterance(self, state):
        hypothesis = self._hypothesis(state)
        state["tokens"], state["times"], state["burst"] = [], [], 0
        state["ended"] += 1
        return hypothesis

    def text(self, tokens):
        return " ".join(chr(ord("a") + t) for t in tokens)

    @staticmethod
    def _hypothesis(state) -> Hypothesis:
        return Hypothesis(list(state["tokens"]), 0, list(state["times"]), state["last"])
