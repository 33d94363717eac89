"""Many speech streams stepped together (the server's batching of one voice): one decoder pass over the mel chunks of
all streams and one vocoder pass over their windows give each stream what it gives alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import seqspeech
from seqspeech.errors import ModelLoadError
from seqspeech.tts.vocoders import GriffinLim, StreamingVocoder
from seqspeech.tts.vocoders.streaming import push_streams

TEXTS = ["The birch canoe slid on the smooth planks.", "Glue the sheet. Then wait a moment, please.",
         "Four hours of steady work faced us."]


@pytest.fixture(scope="module")
def voice():
    try:
        return seqspeech.load_voice("slt", device="cpu")
    except ModelLoadError as e:
        pytest.skip(str(e))


def _run(voice, streams):
    """Step ``streams`` together until all are done; each one's audio and the batch sizes seen."""
    audio = [[] for _ in streams]
    while not all(s.done for s in streams):
        for piece, chunk in zip(audio, voice.step_streams(streams)):
            piece.append(chunk)
    return [np.concatenate(a) for a in audio]


@pytest.mark.slow
def test_streams_stepped_together_equal_each_alone(voice, monkeypatch):
    options = [{}, {"speed": 1.3}, {"pitch": 2.0, "watermark": False}]
    alone = [np.concatenate(list(voice.synthesize_stream(t, progress=False, **o))) for t, o in zip(TEXTS, options)]
    sizes = []
    decode_windows = voice.acoustic.model.decode_windows

    def counted(jobs):
        sizes.append(len(jobs))
        return decode_windows(jobs)

    monkeypatch.setattr(voice.acoustic.model, "decode_windows", counted)
    together = _run(voice, [voice.open_stream(t, **o) for t, o in zip(TEXTS, options)])
    assert max(sizes) == 3  # one decoder pass served all three streams
    for a, b in zip(alone, together):
        assert len(a) == len(b)
        np.testing.assert_allclose(b, a, atol=1e-4)


@pytest.mark.slow
def test_a_stream_joining_late_and_finished_ones_step_cleanly(voice):
    first = voice.open_stream(TEXTS[0], watermark=False)
    early = [voice.step_streams([first])[0] for _ in range(2)]
    late = voice.open_stream(TEXTS[2], watermark=False)
    rest = _run(voice, [first, late])
    assert first.done and late.done
    assert voice.step_streams([first])[0].size == 0  # a finished stream gives nothing more
    np.testing.assert_allclose(np.concatenate([*early, rest[0]]), voice.synthesize(TEXTS[0], watermark=False),
                               atol=1e-4)
    np.testing.assert_allclose(rest[1], voice.synthesize(TEXTS[2], watermark=False), atol=1e-4)


def _mel_chunks(seed, frames, n_mels, sizes):
    mel = torch.randn(n_mels, frames, generator=torch.Generator().manual_seed(seed)) - 4.0
    bounds = np.cumsum([0, *sizes])
    return [mel[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _push_alone(vocoder, chunks):
    stream = StreamingVocoder(vocoder)
    return torch.cat([*(stream.push(c) for c in chunks), stream.finish()])


def _push_together(vocoder, chunk_lists, finish_apart=False):
    """Push the chunks of several streams step by step with :func:`push_streams`; a stream's last chunk ends it
    (``final``), or with ``finish_apart`` a last step of empty chunks does, as ``finish()`` after the pushes."""
    streams = [StreamingVocoder(vocoder) for _ in chunk_lists]
    out = [[] for _ in chunk_lists]
    steps = max(len(c) for c in chunk_lists)
    for step in range(steps + finish_apart):
        active = [i for i, c in enumerate(chunk_lists) if step < len(c) + finish_apart]
        chunks = [chunk_lists[i][step] if step < len(chunk_lists[i]) else torch.zeros(vocoder.n_mels, 0)
                  for i in active]
        finals = [step == len(chunk_lists[i]) - 1 + finish_apart for i in active]
        for i, w in zip(active, push_streams([streams[i] for i in active], chunks, finals)):
            out[i].append(w)
    return [torch.cat(o) for o in out]


@pytest.mark.slow
def test_push_streams_pads_generator_windows_exactly(voice):
    """Windows of different widths (chunk sizes differ, streams end at different steps) share one generator pass."""
    lists = [_mel_chunks(1, 90, 80, [32, 32, 26]), _mel_chunks(2, 50, 80, [7, 40, 3]), _mel_chunks(3, 20, 80, [20])]
    for apart in (False, True):
        together = _push_together(voice.vocoder, lists, finish_apart=apart)
        for alone, batched in zip((_push_alone(voice.vocoder, c) for c in lists), together):
            torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


def test_push_streams_with_griffin_lim_equals_pushing_alone():
    from seqspeech.tts.mel import MelConfig

    gl = GriffinLim(MelConfig(), n_iter=4)
    lists = [_mel_chunks(4, 64, gl.n_mels, [32, 32]), _mel_chunks(5, 40, gl.n_mels, [16, 24])]
    for alone, together in zip((_push_alone(gl, c) for c in lists), _push_together(gl, lists, finish_apart=True)):
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_push_streams_checks_its_arguments():
    with pytest.raises(ValueError, match="2 streams, 1 chunks"):
        push_streams([object(), object()], [torch.zeros(1)], [False, False])
