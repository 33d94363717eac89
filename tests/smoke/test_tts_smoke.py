"""End to end for speech synthesis: a one-voice flite corpus -> `seqspeech train` for the CTC aligner,
FastSpeech 2 (durations from that aligner), Tacotron 2 and HiFi-GAN -> a voice folder -> `seqspeech synthesize`
(offline, streaming, one WAV per line) -> `seqspeech detect-watermark`.

Tiny models train for a few dozen steps; the tests check the losses fall, every run folder holds a loadable model,
and every entry point works on them.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import yaml

from seqspeech.cli import main
from seqspeech.data.corpora.synth import build_synth_corpus

TRAIN = {"max_steps": 30, "lr": 3.0e-3, "warmup_steps": 3, "scheduler": "constant", "checkpoint_every": 15,
         "average_last": 0, "log_every": 1, "progress": False, "tensorboard": False, "eval_every": 15}
MODELS = {
    "aligner": {"family": "ctc_aligner", "hidden": 64, "conv_layers": 1, "lstm_layers": 1, "dropout": 0.0},
    "fastspeech2": {"family": "fastspeech2", "d_model": 32, "heads": 2, "ff_dim": 64, "encoder_layers": 1,
                    "decoder_layers": 1, "variance_channels": 32, "pitch_bins": 16, "energy_bins": 16,
                    "postnet_layers": 1, "postnet_channels": 32, "dropout": 0.0, "decoder_window": 8},
    "tacotron2": {"family": "tacotron2", "embed_dim": 32, "encoder_dim": 32, "attention_dim": 16,
                  "attention_rnn_dim": 32, "decoder_dim": 32, "decoder_layers": 1, "prenet_dim": 16,
                  "location_filters": 4, "location_kernel": 7, "postnet_dim": 16, "postnet_layers": 2,
                  "reduction": 2, "max_decoder_steps": 60, "dropout": 0.0},
    # mel-only warm-up, then the GAN losses, as the shipped recipe (whose iSTFT head tests/tts/test_vocoders.py checks)
    "hifigan": {"family": "hifigan", "preset": "v2", "upsample_initial_channel": 16,
                "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]], "discriminator_channels": 32,
                "mpd_periods": [2, 3], "msd_scales": 1, "segment_frames": 16, "adversarial_start_step": 10},
}


@pytest.fixture(scope="module")
def slt_corpus(tmp_path_factory):
    if shutil.which("flite") is None:
        pytest.skip("flite not installed")
    root = tmp_path_factory.mktemp("slt")
    return build_synth_corpus(root / "corpus", num_sentences=10, dev_sentences=2, test_sentences=2, seed=3,
                              voice="flite:slt", jobs=2, progress=False)


def _train(root, name: str, corpus, run_name: str | None = None, **extra) -> object:
    data = {"train": str(corpus["train"]), "dev": str(corpus["dev"]), "max_batch_seconds": 60.0,
            "num_buckets": 1, "pitch": True, "cache_dir": str(root / "cache")}
    recipe = {"task": "tts", "data": data, "frontend": {"mode": "phoneme"}, "model": MODELS[name],
              "train": TRAIN, **extra}
    path = root / f"{run_name or name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run = root / (run_name or name)
    assert main(["train", str(path), "--out", str(run)]) == 0
    return run


def _losses(run, key: str = "loss") -> list[float]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r[key] for r in records if r.get("event") == "train"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, slt_corpus):
    root = tmp_path_factory.mktemp("tts_runs")
    out = {"aligner": _train(root, "aligner", slt_corpus)}
    out["fastspeech2"] = _train(root, "fastspeech2", slt_corpus, aligner=str(out["aligner"] / "model.safetensors"))
    out["tacotron2"] = _train(root, "tacotron2", slt_corpus)
    out["hifigan"] = _train(root, "hifigan", slt_corpus)
    return root, out


def test_hifigan_finetunes_on_ground_truth_aligned_mels(runs, slt_corpus):
    """A HiFi-GAN recipe with `finetune`: FastSpeech 2's mels for the recordings' own durations replace the
    recordings' mels, and training starts from the first vocoder's checkpoint (discriminators included)."""
    import torch

    from seqspeech.tts.package import load_tts_package

    root, out = runs
    first = sorted(out["hifigan"].glob("step-*.pt"))[-1]
    finetune = {"acoustic": str(out["fastspeech2"] / "model.safetensors"), "init": str(first)}
    run = _train(root, "hifigan", slt_corpus, run_name="hifigan_ft", finetune=finetune,
                 aligner=str(out["aligner"] / "model.safetensors"))
    gta_files = list((root / "cache").glob("train-gta-model-*.pt"))
    assert len(gta_files) == 1
    gta = torch.load(gta_files[0], weights_only=True)
    targets = torch.load(next((root / "cache").glob("train-fs2-targets-*.pt")), weights_only=True)
    assert gta.keys() == targets.keys()
    for uid, mel in gta.items():  # one mel frame per recording frame: the durations' sum
        assert mel.shape == (80, int(targets[uid]["durations"].sum())) and bool(torch.isfinite(mel).all())
    # it starts where the first run ended, not from scratch
    assert _losses(run, "mel_loss")[0] < 0.9 * _losses(out["hifigan"], "mel_loss")[0]
    assert load_tts_package(run / "model.safetensors").family == "hifigan"


def test_hifigan_continues_from_a_checkpoint_with_a_multi_resolution_mel_loss(runs, slt_corpus):
    """`finetune` with `init` only: the recordings' mels, training resumed from the first vocoder's weights (here
    with extra mel-loss resolutions, as recipes/synth_slt/hifigan_multires.yaml)."""
    root, out = runs
    first = sorted(out["hifigan"].glob("step-*.pt"))[-1]
    model = MODELS["hifigan"] | {"mel_loss_windows": [128, 256]}
    run = _train(root, "hifigan", slt_corpus, run_name="hifigan_mr", finetune={"init": str(first)}, model=model)
    fresh = _train(root, "hifigan", slt_corpus, run_name="hifigan_mr_fresh", model=model)
    # the same loss from the first run's weights starts lower than from scratch
    assert _losses(run, "mel_loss")[0] < 0.9 * _losses(fresh, "mel_loss")[0]


def test_fastspeech2_continues_from_a_package(runs, slt_corpus, capsys):
    """`finetune: {init: PACKAGE}` on an acoustic model: a voice's FastSpeech 2 trained on (its first loss is the
    first run's late loss, not a fresh model's); ground-truth-aligned mels stay a HiFi-GAN option."""
    root, out = runs
    aligner = str(out["aligner"] / "model.safetensors")
    package = str(out["fastspeech2"] / "model.safetensors")
    run = _train(root, "fastspeech2", slt_corpus, run_name="fastspeech2_more", aligner=aligner,
                 finetune={"init": package})
    first, more = _losses(out["fastspeech2"], "mel_loss"), _losses(run, "mel_loss")
    assert more[0] < 0.9 * first[0] and more[0] < 1.2 * max(first[-5:]), (first, more)
    capsys.readouterr()
    vocoder = str(out["hifigan"] / "model.safetensors")
    for name, finetune, message in (
        ("fastspeech2_bad", {"acoustic": package}, "fastspeech2_bad.yaml: finetune.acoustic is for HiFi-GAN"),
        ("fastspeech2_misfit", {"init": vocoder}, f"{vocoder}: its weights do not fit the recipe's FastSpeech2"),
    ):
        with pytest.raises(AssertionError):  # `seqspeech train` exits non-zero
            _train(root, "fastspeech2", slt_corpus, run_name=name, aligner=aligner, finetune=finetune)
        err = capsys.readouterr().err
        assert message in err and len(err) < 1000, err


def test_finetune_needs_an_acoustic_model_or_a_vocoder_to_start_from():
    from seqspeech.errors import ConfigError
    from seqspeech.tasks.tts import FinetuneSection

    with pytest.raises(ConfigError, match="finetune needs 'acoustic'"):
        FinetuneSection()
    assert FinetuneSection(init="x.pt").acoustic is None


@pytest.mark.parametrize("name,key", [("aligner", "loss"), ("fastspeech2", "mel_loss"), ("tacotron2", "mel_loss"),
                                      ("hifigan", "mel_loss")])
def test_training_lowers_the_loss_and_writes_a_model(runs, name, key):
    _, out = runs
    losses = _losses(out[name], key)
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5]), losses
    for filename in ("model.safetensors", "recipe.yaml", "train_summary.json"):
        assert (out[name] / filename).exists(), filename


@pytest.fixture(scope="module")
def voice(runs):
    root, out = runs
    folder = root / "voice"
    folder.mkdir()
    shutil.copy(out["fastspeech2"] / "model.safetensors", folder / "acoustic.safetensors")
    shutil.copy(out["hifigan"] / "model.safetensors", folder / "vocoder.safetensors")
    return folder


def _report(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_synthesize_offline_stream_and_lines(voice, runs, tmp_path, capsys):
    capsys.readouterr()
    wav = tmp_path / "out.wav"
    assert main(["synthesize", "Dr. Smith paid $5 on May 3rd.", "-o", str(wav), "--model", str(voice)]) == 0
    report = _report(capsys)[0]
    audio, sr = sf.read(wav, dtype="float32")
    assert sr == 16000 and audio.size > 0 and report["seconds"] == pytest.approx(audio.size / sr, abs=1e-3)
    assert main(["synthesize", "Hello there. How are you?", "-o", str(tmp_path / "s.wav"), "--model", str(voice),
                 "--stream", "--speed", "1.5", "--pitch", "2"]) == 0
    assert _report(capsys)[0]["first_chunk_ms"] > 0
    lines = tmp_path / "lines.txt"
    lines.write_text("one line\n\nsecond line here\n")
    assert main(["synthesize", "--input", str(lines), "--output-dir", str(tmp_path / "many"), "--model", str(voice),
                 "--no-watermark"]) == 0
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == ["0001.wav", "0003.wav"]
    # the Tacotron 2 model speaks too, with Griffin-Lim
    _, out = runs
    assert main(["synthesize", "a short test", "-o", str(tmp_path / "t.wav"), "--model",
                 str(out["tacotron2"] / "model.safetensors"), "--vocoder", "griffin-lim"]) == 0


def test_watermark_detected_only_when_embedded(voice, tmp_path, capsys):
    marked, plain = tmp_path / "marked.wav", tmp_path / "plain.wav"
    text = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
    assert main(["synthesize", text, "-o", str(marked), "--model", str(voice)]) == 0
    assert main(["synthesize", text, "-o", str(plain), "--model", str(voice), "--no-watermark"]) == 0
    capsys.readouterr()
    assert main(["detect-watermark", str(marked), str(plain)]) == 0
    out = capsys.readouterr().out
    assert "present" in out.splitlines()[0] and "absent" in out.splitlines()[1]


def test_bad_text_gives_a_clear_error(voice, tmp_path, capsys):
    for text in ("", "!!! ... ???", "\x00\x07"):
        assert main(["synthesize", text, "-o", str(tmp_path / "x.wav"), "--model", str(voice)]) == 2
        assert "seqspeech: error:" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()
