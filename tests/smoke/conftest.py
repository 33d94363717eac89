"""A tiny synthetic corpus (espeak-ng), built once for every end-to-end smoke test."""

from __future__ import annotations

import shutil

import pytest

from seqspeech.data.corpora.synth import build_synth_corpus


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    root = tmp_path_factory.mktemp("synth_corpus")
    return build_synth_corpus(root / "corpus", num_sentences=12, dev_sentences=2, test_sentences=3, seed=1,
                              jobs=2, progress=False, eval_only_voices=False)
