"""Synthetic corpora: sentence generators, voices, and tiny corpus builds (a handful of short utterances)."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from seqspeech.data.corpora import synth as synth_corpus
from seqspeech.data.corpora.synth import (
    DEFAULT_HELDOUT_VOICES,
    MAX_WORDS,
    MIN_WORDS,
    Voice,
    build_synth_corpus,
    generate_sentences,
    training_voices,
)
from seqspeech.data.corpora.synth_lexicon import comparative, plural, verb_forms
from seqspeech.data.manifest import read_manifest
from seqspeech.data.synth import EVAL_ONLY_VOICES
from seqspeech.errors import ConfigError
from seqspeech.text.verbalize import verbalize_en, verbalize_es

SPOKEN_EN = re.compile(r"^[a-z']+( [a-z']+)*$")
SPOKEN_ES = re.compile(r"^[a-záéíóúüñ']+( [a-záéíóúüñ']+)*$")
needs_engines = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("flite") is None, reason="espeak-ng and flite are needed"
)


# --- English sentences -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentences_10k() -> list[str]:
    return generate_sentences(10_000, seed=0)


def test_sentences_distinct_and_spoken_forms_clean(sentences_10k: list[str]) -> None:
    spoken = [verbalize_en(s) for s in sentences_10k]
    assert len(set(spoken)) == len(spoken) == 10_000
    for text in spoken:
        assert SPOKEN_EN.match(text), text
        assert MIN_WORDS <= len(text.split()) <= MAX_WORDS, text


def test_sentences_broad_vocabulary(sentences_10k: list[str]) -> None:
    vocab = {w for s in sentences_10k for w in verbalize_en(s).split()}
    assert len(vocab) >= 3000, len(vocab)


def test_sentences_cover_written_forms(sentences_10k: list[str]) -> None:
    joined = "\n".join(sentences_10k)
    assert re.search(r"\$\d", joined)  # money
    assert re.search(r"\b\d{1,2}:\d\d\b", joined)  # times
    assert re.search(r"\b(January|May|October) \d{1,2}\b", joined)  # dates
    assert re.search(r"\d+%", joined)  # percent
    assert re.search(r"\b(Mr|Mrs|Dr)\. [A-Z]", joined)  # abbreviations
    assert sum(s.endswith("?") for s in sentences_10k) > 500  # questions
    assert re.search(r"\w+, \w+,? and \w+", joined)  # lists


def test_sentences_reproducible() -> None:
    assert generate_sentences(300, seed=3) == generate_sentences(300, seed=3)
    assert generate_sentences(300, seed=3) != generate_sentences(300, seed=4)
    assert generate_sentences(50, seed=3) == generate_sentences(300, seed=3)[:50]
    with pytest.raises(ConfigError):
        generate_sentences(-1, seed=0)


def test_inflections() -> None:
    assert [plural(w) for w in ("box", "city", "knife", "bus stop", "key")] == [
        "boxes", "cities", "knives", "bus stops", "keys"]  # fmt: skip
    assert verb_forms("stop") == {"base": "stop", "third": "stops", "past": "stopped", "participle": "stopped",
                                  "ing": "stopping"}  # fmt: skip
    assert verb_forms("carry")["third"] == "carries" and verb_forms("carry")["past"] == "carried"
    assert verb_forms("pick up")["past"] == "picked up"
    assert verb_forms("write")["participle"] == "written" and verb_forms("write")["ing"] == "writing"
    assert [comparative(a) for a in ("big", "happy", "expensive", "large", "cold")] == [
        "bigger", "happier", "more expensive", "larger", "colder"]  # fmt: skip


# --- voices ---------------------------------------------------------------------------------------------


def test_voice_id() -> None:
    assert Voice("espeak-ng", "en-gb-scotland+f3", 160, 60).id == "espeak-ng:en-gb-scotland+f3:s160:p60"
    assert Voice("flite", "slt").id == "flite:slt"


def test_training_voices_exclude_heldout_and_eval_only() -> None:
    voices = training_voices("en")
    assert not set(voices) & EVAL_ONLY_VOICES
    assert ("espeak-ng", "en-gb-scotland+f3") not in voices  # a default held-out voice
    assert ("espeak-ng", "en-gb-scotland+f2") in voices
    assert {("flite", "slt"), ("flite", "kal16")} <= set(voices)
    assert all(name.startswith("es") for _, name in training_voices("es"))
    with pytest.raises(ConfigError, match="unknown voice"):
        training_voices("en", ["en-xx+f9"])
    with pytest.raises(ConfigError):
        training_voices("fr")


# --- corpus builds ----------------------------------------------------------------------------------------

TINY = dict(num_sentences=4, dev_sentences=1, test_sentences=2, seed=7, jobs=2, progress=False)


def _manifest_lines(root: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(root.glob("*.jsonl"))}


@pytest.fixture(scope="module")
def tiny_en(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    if shutil.which("espeak-ng") is None or shutil.which("flite") is None:
        pytest.skip("espeak-ng and flite are needed")
    root = tmp_path_factory.mktemp("synth_en")
    return root, build_synth_corpus(root, language="en", **TINY)


@needs_engines
def test_build_en_splits_and_audio(tiny_en: tuple[Path, dict[str, Path]]) -> None:
    root, manifests = tiny_en
    assert set(manifests) == {"train", "dev", "test", "test_voices", "test_eval_voices"}
    utts = {name: read_manifest(path) for name, path in manifests.items()}
    assert [len(utts[n]) for n in ("train", "dev", "test", "test_voices", "test_eval_voices")] == [4, 1, 2, 2, 2]
    train_text = {u.normalized_text for u in utts["train"]}
    for split in ("dev", "test"):
        assert not train_text & {u.normalized_text for u in utts[split]}
    assert [u.normalized_text for u in utts["test"]] == [u.normalized_text for u in utts["test_voices"]]
    heldout = {("espeak-ng", v) for v in DEFAULT_HELDOUT_VOICES}
    for split in ("train", "dev", "test"):
        for u in utts[split]:
            engine, name = u.speaker.split(":")[:2]
            assert (engine, name) not in EVAL_ONLY_VOICES and (engine, name) not in heldout
    assert all(tuple(u.speaker.split(":")[:2]) in heldout for u in utts["test_voices"])
    assert all(tuple(u.speaker.split(":")) in EVAL_ONLY_VOICES for u in utts["test_eval_voices"])
    for u in utts["train"]:
        assert SPOKEN_EN.match(u.normalized_text) and u.normalized_text == verbalize_en(u.text)
        assert u.language == "en" and u.pair_id is None
        info = sf.info(u.audio)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert u.duration == pytest.approx(info.duration, abs=1e-3) and 0.3 < u.duration < 10
        assert Path(u.audio).parent == root / "wavs" / "train"
    raw = json.loads(manifests["train"].read_text().splitlines()[0])
    assert raw["audio"].startswith("wavs/train/")  # stored relative: the folder can move
    assert json.loads((root / "corpus.json").read_text())["seed"] == TINY["seed"]


@needs_engines
def test_build_reproducible_and_resumable(tiny_en: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    root, _ = tiny_en
    other = tmp_path / "again"
    build_synth_corpus(other, language="en", **TINY)
    assert _manifest_lines(other) == _manifest_lines(root)

    kept = other / "wavs" / "train" / "train-000001-0.wav"
    removed = other / "wavs" / "train" / "train-000000-0.wav"
    removed.unlink()
    mtime = kept.stat().st_mtime_ns
    build_synth_corpus(other, language="en", **TINY)  # resumes: only the missing file is made again
    assert removed.is_file() and kept.stat().st_mtime_ns == mtime
    assert _manifest_lines(other) == _manifest_lines(root)

    with pytest.raises(ConfigError, match="other arguments.*seed"):
        build_synth_corpus(other, language="en", **{**TINY, "seed": 8})


@needs_engines
def test_build_skips_failed_utterances(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synth_corpus.synthesize_wav
    calls: list[str] = []

    def flaky(text: str, out_path: Path, **kw: object) -> float:
        if Path(out_path).name == "train-000002-0.wav":
            calls.append(text)
            raise ConfigError("espeak-ng failed (simulated)")
        return real(text, out_path, **kw)

    monkeypatch.setattr(synth_corpus, "synthesize_wav", flaky)
    with pytest.warns(UserWarning, match="1 of 9 utterances failed"):
        manifests = build_synth_corpus(tmp_path, language="en", eval_only_voices=False, **TINY)
    assert len(calls) == 2  # retried once
    assert "test_eval_voices" not in manifests
    ids = [u.id for u in read_manifest(manifests["train"])]
    assert ids == ["train-000000-0", "train-000001-0", "train-000003-0"]


@needs_engines
def test_build_single_voice_corpus(tmp_path: Path) -> None:
    manifests = build_synth_corpus(tmp_path, language="en", voice="flite:slt", **TINY)
    assert set(manifests) == {"train", "dev", "test"}  # no held-out or evaluation-voice splits
    utts = [u for path in manifests.values() for u in read_manifest(path)]
    assert len(utts) == 7 and {u.speaker for u in utts} == {"flite:slt"}
    assert json.loads((tmp_path / "corpus.json").read_text())["voice"] == "flite:slt"
    with pytest.raises(ConfigError, match="other arguments.*voice"):
        build_synth_corpus(tmp_path, language="en", voice="flite:kal16", **TINY)


def test_build_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="language"):
        build_synth_corpus(tmp_path, language="fr", num_sentences=2)
    with pytest.raises(ConfigError, match="num_sentences"):
        build_synth_corpus(tmp_path, num_sentences=0)
    with pytest.raises(ConfigError, match="evaluation-only"):
        build_synth_corpus(tmp_path, num_sentences=2, heldout_voices=["flite:rms"])
    with pytest.raises(ConfigError, match="evaluation-only voice; it cannot speak"):
        build_synth_corpus(tmp_path, num_sentences=2, voice="flite:awb")
    with pytest.raises(ConfigError, match="unknown voice"):
        build_synth_corpus(tmp_path, num_sentences=2, voice="flite:nobody")


# --- Spanish-English ------------------------------------------------------------------------------------


def test_parallel_pairs_distinct_reproducible_and_broad() -> None:
    from seqspeech.data.corpora.synth_es_en import generate_parallel

    pairs = generate_parallel(5000, seed=0)
    spoken_es = [verbalize_es(es) for es, _ in pairs]
    spoken_en = [verbalize_en(en) for _, en in pairs]
    assert len(set(spoken_es)) == len(set(spoken_en)) == 5000
    assert all(SPOKEN_ES.match(s) for s in spoken_es) and all(SPOKEN_EN.match(s) for s in spoken_en)
    assert len({w for s in spoken_es for w in s.split()}) >= 500
    assert generate_parallel(100, seed=1) == generate_parallel(100, seed=1) != generate_parallel(100, seed=2)


def test_spanish_agreement_and_conjugation() -> None:
    from seqspeech.data.corpora.synth_es_en import _adj, _es_plural, conjugate_es

    assert [_adj("rojo", g, p) for g in "mf" for p in (False, True)] == ["rojo", "rojos", "roja", "rojas"]
    assert _adj("grande", "f", True) == "grandes" and _adj("azul", "f", True) == "azules"
    assert [_es_plural(w) for w in ("camión", "lápiz", "flor", "casa")] == ["camiones", "lápices", "flores", "casas"]
    assert [conjugate_es("comprar", "present", p) for p in range(5)] == [
        "compro", "compras", "compra", "compramos", "compran"]  # fmt: skip
    assert conjugate_es("comer", "past", 2) == "comió" and conjugate_es("buscar", "past", 0) == "busqué"
    assert conjugate_es("vivir", "future", 3) == "viviremos" and conjugate_es("tener", "present", 0) == "tengo"


@needs_engines
def test_build_es_en_pairs(tmp_path: Path) -> None:
    manifests = build_synth_corpus(tmp_path, language="es-en", num_sentences=2, dev_sentences=1, test_sentences=1,
                                   seed=0, jobs=2, progress=False)  # fmt: skip
    assert set(manifests) == {f"{s}.{lang}" for s in ("train", "dev", "test", "test_voices") for lang in ("es", "en")}
    es, en = read_manifest(manifests["train.es"]), read_manifest(manifests["train.en"])
    assert [u.pair_id for u in es] == [u.pair_id for u in en] and len(es) == 2
    assert all(u.language == "es" and u.speaker.split(":")[1].startswith("es") for u in es)
    assert all(u.language == "en" and u.speaker.split(":")[1].startswith("en") for u in en)
    assert all(u.normalized_text == verbalize_es(u.text) for u in es)


# --- CLI ------------------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    from seqspeech.cli_corpus import add_parser

    parser = argparse.ArgumentParser(prog="seqspeech")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@needs_engines
def test_cli_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "corpus"
    argv = ["corpus", "synth", str(out), "--sentences", "2", "--dev", "1", "--test", "1", "--seed", "5",
            "--jobs", "2", "--no-eval-voices", "--heldout-voices", "en-us+f1", "--no-progress"]  # fmt: skip
    assert _cli(argv) == 0
    assert "train: 2 utterances" in capsys.readouterr().out
    assert not (out / "test_eval_voices.jsonl").exists()
    assert [u.speaker.split(":")[1] for u in read_manifest(out / "test_voices.jsonl")] == ["en-us+f1"]
    assert json.loads((out / "corpus.json").read_text())["heldout_voices"] == ["en-us+f1"]


def test_cli_prepare_ljspeech(tmp_path: Path) -> None:
    src = tmp_path / "LJSpeech-1.1"
    (src / "wavs").mkdir(parents=True)
    sf.write(src / "wavs" / "LJ001-0001.wav", [0.0, 0.1, -0.1] * 1000, 16000)
    (src / "metadata.csv").write_text("LJ001-0001|Printing, in 1999.|Printing, in nineteen ninety-nine.\n")
    out = tmp_path / "lj.jsonl"
    assert _cli(["corpus", "prepare", "ljspeech", str(src), str(out)]) == 0
    (utt,) = read_manifest(out)
    assert utt.id == "LJ001-0001" and utt.duration == pytest.approx(3000 / 16000)
    with pytest.raises(SystemExit):
        _cli(["corpus", "prepare", "timit", str(src), str(out)])
