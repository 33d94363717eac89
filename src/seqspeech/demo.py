"""`make demo`: synthesize a few sentences with espeak-ng and flite, transcribe them with the embedded default
Whisper model, and score the result.

    python -m seqspeech.demo [--model NAME] [--out DIR]
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
    ap.add_argument("--out", type=Path, default=None, help="keep the clips here (default: a temp dir)")
    args = ap.parse_args(argv)

    import seqspeech
    from .audio.io import audio_info
    from .metrics.wer import wer

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
    score = wer([r for r, _, _ in DEMO], [t.text for t in transcripts])
    print(
        f"WER {score * 100:.1f} % over {len(paths)} clips; {audio_s:.1f} s of audio in {wall:.2f} s "
        f"(RTF {wall / audio_s:.3f}) with {asr.name} ({asr.compute_type}, {asr.device})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
