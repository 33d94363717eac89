#!/usr/bin/env bash
# Conformer-CTC on synthetic English, end to end on 2 CPU cores: corpus (~4 min), training (40 min), results.
# Re-running resumes: finished WAVs are kept, and `train --resume` continues from the newest checkpoint.
set -euo pipefail
cd "$(dirname "$0")/../.."
make setup
PY=.venv/bin
$PY/seqspeech corpus synth data/synth_en --language en --sentences 10000 --dev 200 --test 300 --per-sentence 1 \
    --seed 0 --jobs "$(nproc)"
RESUME=""
compgen -G "runs/synth_en-asr_ctc/step-*.pt" >/dev/null && RESUME="--resume"  # a checkpoint to resume from
$PY/seqspeech train recipes/synth_en/asr_ctc.yaml --out runs/synth_en-asr_ctc $RESUME
$PY/python results/asr_ctc_synth.py --run runs/synth_en-asr_ctc
