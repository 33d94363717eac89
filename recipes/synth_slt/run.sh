#!/usr/bin/env bash
# The default voice, end to end on 2 CPU cores: flite slt corpus (~15 min), CTC aligner (25 min), FastSpeech 2
# (30 min, continued 55 min), HiFi-GAN (25 min) and its continuation with a multi-resolution mel loss (20 min),
# Tacotron 2 (40 min), HiFi-GAN fine-tuned on FastSpeech 2's ground-truth-aligned mels (10 min), results (each voice
# ships with its most intelligible vocoder). Re-running resumes every step.
set -euo pipefail
cd "$(dirname "$0")/../.."
make setup
PY=.venv/bin
$PY/seqspeech corpus synth data/synth_slt --language en --voice flite:slt --sentences 4000 --dev 100 --test 100 \
    --seed 1 --jobs "$(nproc)"
train() {  # recipe, run dir
    local resume=""
    compgen -G "$2/step-*.pt" >/dev/null && resume="--resume"  # a checkpoint to resume from
    $PY/seqspeech train "recipes/synth_slt/$1.yaml" --out "$2" $resume
}
train aligner runs/synth_slt-aligner
train fastspeech2 runs/synth_slt-fastspeech2-30min
train fastspeech2_continue runs/synth_slt-fastspeech2
train hifigan runs/synth_slt-hifigan
train hifigan_multires runs/synth_slt-hifigan_mr
train tacotron2 runs/synth_slt-tacotron2
train hifigan_finetune runs/synth_slt-hifigan_ft
$PY/python results/tts_synth.py
