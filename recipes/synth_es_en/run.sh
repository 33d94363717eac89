#!/usr/bin/env bash
# Spanish -> English speech translation on 2 CPU cores: the parallel speech corpus (~10 min), the text MT (25 min),
# the Spanish recogniser (35 min), results. Re-running resumes the corpus and, with a checkpoint, each training run.
set -euo pipefail
cd "$(dirname "$0")/../.."
make setup
PY=.venv/bin
$PY/seqspeech corpus synth data/synth_es_en --language es-en --sentences 10000 --dev 200 --test 300 --seed 1 \
    --jobs "$(nproc)"
train() {  # recipe, run folder
    local resume=""
    compgen -G "$2/step-*.pt" >/dev/null && resume="--resume"
    $PY/seqspeech train "$1" --out "$2" $resume
}
train recipes/synth_es_en/mt.yaml runs/mt-es-en
train recipes/synth_es_en/asr_ctc_es.yaml runs/synth_es_en-asr_ctc_es
$PY/python results/s2st_synth.py --run runs/mt-es-en
