"""`make demo`: from waveforms to words and back again.

Synthesize a few sentences with espeak-ng and flite, transcribe them with the embedded default Whisper model and with
our own models (trained on 2 CPU cores, shipped in models/) and score them, stream one clip through our streaming
RNN-T and print its partial results with their times; then speak the first transcript with our
default voice (FastSpeech 2 + HiFi-GAN, `slt`), transcribe that speech back and print both transcripts.

    python -m seqspeech.demo [--model NAME] [--ctc-model NAME] [--stream-model NAME] [--aed-model NAME]
                             [--voice NAME] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from .data.synth import HARVARD_SENTENCES, cached_clip
from .formats import render

DEMO = [
    (HARVARD_SENTENCES[0], "espeak-ng", "en-us"),
    (HARVARD_SENTENCES[5], "flite", "slt"),
    (HARVARD_SENTENCES[12], "espeak-ng", "en-gb-x-rp"),
    (HARVARD_SENTENCES[20], "flite", "kal16"),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="whisper-tiny.en")
    ap.add_argument("--ctc-model", default="ctc-conformer-synth-en", help="'' skips the CTC part")
    ap.add_argument("--aed-model", default="aed-conformer-synth-en", help="'' skips the AED part")
    ap.add_argument("--stream-model", default="rnnt-synth-en", help="streaming recogniser ('' skips streaming)")
    ap.add_argument("--voice", default="slt", help="text-to-speech voice for the round trip ('' skips it)")
    ap.add_argument("--out", type=Path, default=None, help="keep the clips here (default: a temp dir)")
    args = ap.parse_args(argv)

    import seqspeech
    from .audio.io import audio_info

    out = args.out or Path(tempfile.mkdtemp(prefix="seqspeech-demo-"))
    paths = [str(cached_clip(out, text, engine=engine, voice=voice)) for text, engine, voice in DEMO]
    print(f"loading {args.model} ...", flush=True)
    asr = seqspeech.load_model(args.model)
    t0 = time.perf_counter()
    transcripts = asr.transcribe_batch(paths, beam_size=5)
    wall = time.perf_counter() - t0
    audio_s = sum(audio_info(p)[0] for p in paths)
    for (ref, engine, voice), path, t in zip(DEMO, paths, transcripts):
        print(f"\n[{engine}:{voice}] {path}\n  reference : {ref}\n  hypothesis: {t.text}")
    print("\n" + render("srt", paths[0], transcripts[0]))
    _report(asr, transcripts, wall, audio_s)
    if args.ctc_model:
        ctc = _ours(seqspeech, args.ctc_model, paths, audio_s, beam_size=8)
        spans = ctc.word_timestamps(paths[0])
        print("word timestamps (CTC forced alignment): "
              + " ".join(f"{s.word}@{s.start_s:.2f}-{s.end_s:.2f}" for s in spans))
    if args.stream_model:
        _stream(seqspeech, args.stream_model, paths[0])
    if args.aed_model:
        aed = _ours(seqspeech, args.aed_model, paths, audio_s)
        m = aed.alignment(paths[0]).metrics
        print(f"attention of the first clip: diagonality {m.diagonality:.2f}, focus rate {m.focus_rate:.2f}, "
              f"{len(m.skips)} skips, {len(m.repeats)} repeats ({'diagonal' if m.is_diagonal else 'not diagonal'})")
    if args.voice:
        _round_trip(seqspeech, args.voice, asr, transcripts[0].text, out)
    return 0


def _round_trip(seqspeech, voice_name: str, asr, text: str, out: Path) -> None:
    """Words back to a waveform: speak ``text`` with the voice, transcribe the speech with ``asr``, compare."""
    from .audio.io import write_wav
    from .audio.watermark import detect_watermark
    from .metrics.wer import wer

    print(f"\nloading voice {voice_name} ...", flush=True)
    voice = seqspeech.load_voice(voice_name)
    t0 = time.perf_counter()
    wave = voice.synthesize(text)
    wall = time.perf_counter() - t0
    path = out / "spoken.wav"
    write_wav(path, wave, voice.sample_rate)
    audio_s = len(wave) / voice.sample_rate
    back = asr.transcribe(str(path), beam_size=5).text
    mark = detect_watermark(wave, voice.sample_rate)
    print(f"spoke {audio_s:.1f} s in {wall:.2f} s (RTF {wall / audio_s:.3f}) -> {path}")
    print(f"  transcript spoken : {text.strip()}")
    print(f"  transcribed back  : {back.strip()}")
    print(f"  WER between them {wer([text], [back]) * 100:.1f} %; watermark "
          f"{'present' if mark.present else 'absent'} (score {mark.score:.2f})")


def _stream(seqspeech, name: str, path: str, chunk_ms: int = 320) -> None:
    """Feed a clip to a streaming recogniser in pieces of ``chunk_ms``, as a microphone delivers it; print every
    partial and final result with the audio time it came at."""
    from .audio.io import load_audio

    print(f"\nloading {name} ... streaming {Path(path).name} in {chunk_ms} ms pieces", flush=True)
    stream = seqspeech.load_model(name).stream()
    audio = load_audio(path)
    step = chunk_ms * 16
    events = []
    for start in range(0, len(audio), step):
        events += stream.accept_audio(audio[start : start + step])
    events += stream.finish()
    for e in events:
        print(f"  {e.emitted_at:5.2f}s  {e.type:<7}  {e.text}")
    partials = [e for e in events if e.type == "partial" and e.text]
    if partials:
        print(f"first words shown at {partials[0].emitted_at:.2f} s of {len(audio) / 16000:.2f} s of audio")


def _ours(seqspeech, name: str, paths: list[str], audio_s: float, **options):
    """Load one of our trained models, transcribe the clips with it and report; returns the model."""
    print(f"\nloading {name} ...", flush=True)
    asr = seqspeech.load_model(name)
    t0 = time.perf_counter()
    transcripts = asr.transcribe_batch(paths, **options)
    wall = time.perf_counter() - t0
    for (_, engine, voice), t in zip(DEMO, transcripts):
        print(f"[{engine}:{voice}] {t.text}")
    _report(asr, transcripts, wall, audio_s)
    return asr


def _report(asr, transcripts, wall: float, audio_s: float) -> None:
    from .metrics.wer import cer, wer

    refs = [r for r, _, _ in DEMO]
    hyps = [t.text for t in transcripts]
    print(
        f"WER {wer(refs, hyps) * 100:.1f} %, CER {cer(refs, hyps) * 100:.1f} % over {len(hyps)} clips; "
        f"{audio_s:.1f} s of audio in {wall:.2f} s (RTF {wall / audio_s:.3f}) with {asr.name} "
        f"({asr.compute_type}, {asr.device})"
    )


if __name__ == "__main__":
    raise SystemExit(main())
