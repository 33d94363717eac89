"""The README is a test: every shell command and Python snippet in its code blocks runs here, as a user types it.

Commands run in order in one workspace (later ones use what earlier ones made: corpus -> training -> evaluation),
with the small files the README names (`talk.wav`, `meeting.m4a`, `lines.txt`, ...) made in place. Nothing is
changed in a command except sizes: corpus synthesis gets a handful of sentences and training a few steps through
`--set` (`SHRINK`). A command that cannot run here is marked in the README by an HTML comment,
``<!-- untested: `COMMAND` why -->``, and `UNTESTED` below must name exactly those, so no command drops out of the
test unnoticed. Each command must exit 0 with no traceback, and what it is documented to make is checked
(`EXPECT`).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV = Path(sys.prefix)
UNTESTED_MARK = re.compile(r"<!--\s*untested:\s*`([^`]+)`\s*(.*?)-->", re.S)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

# the commands the README marks as not run here (with its reason), no more and no fewer
UNTESTED = {"make test", "bash recipes/synth_en/run.sh", "bash recipes/synth_slt/run.sh"}

# a few steps instead of 40 minutes: the recipe's own model, data and decoding, only shorter
TINY_TRAIN = ["--set", "train.max_minutes=null", "--set", "train.max_steps=3", "--set", "train.checkpoint_every=3",
              "--set", "train.eval_every=3", "--set", "train.snapshot_minutes=[]", "--set", "train.progress=false",
              "--set", "train.tensorboard=false"]
SHRINK: dict[str, dict[str, str] | list[str]] = {
    ".venv/bin/seqspeech corpus synth data/synth_en": {"--sentences": "10", "--dev": "2", "--test": "3"},
    ".venv/bin/seqspeech corpus synth data/synth_slt": {"--sentences": "10", "--dev": "2", "--test": "2"},
    ".venv/bin/seqspeech train recipes/synth_es_en/mt.yaml": TINY_TRAIN + [
        "--set", "data.pairs=300", "--set", "data.dev=10", "--set", "data.test=10", "--set", "data.batch_tokens=400",
        "--set", "data.dev_bleu_sentences=5", "--set", "tokenizer.vocab_size=120", "--set", "model.dim=32",
        "--set", "model.ff_dim=64", "--set", "model.encoder_layers=1", "--set", "model.decoder_layers=1",
        "--set", "beam_size=2", "--set", "eval_wait_k=[2]"],
    ".venv/bin/seqspeech train recipes/": TINY_TRAIN,
    # a 3-step model never ends a hypothesis: keep its decoding short
    ".venv/bin/python results/asr_attention_synth.py": ["--max-utterances", "1", "--beam-size", "2", "--long-count",
                                                        "1", "--stream-utterances", "1"],
    ".venv/bin/python results/asr_rnnt_synth.py": ["--max-utterances", "1", "--sweep-utterances", "1", "--dev-utterances",
                                                   "2", "--latency-utterances", "1", "--throughput-seconds", "1",
                                                   "--beam-size", "2"],
}


@dataclass(frozen=True)
class Snippet:
    kind: str  # "shell" or "python"
    text: str  # as the README has it (shell: one command, continuation lines joined)
    line: int  # where it starts in README.md

    @property
    def command(self) -> str:
        """The shell command without its trailing comment."""
        return strip_comment(self.text)

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.command[:70] if self.kind == 'shell' else 'python snippet'}"


def strip_comment(line: str) -> str:
    """``line`` up to an unquoted ``#`` that starts a word (a shell comment)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def readme_snippets(text: str) -> list[Snippet]:
    """Every shell command (one per logical line) and every Python block of the README's fenced code."""
    out = []
    for match in FENCE.finditer(text):
        lang, body = match.group(1), match.group(2)
        first = text.count("\n", 0, match.start()) + 2
        if lang == "python":
            out.append(Snippet("python", body, first))
        elif lang in ("bash", "sh", "shell"):
            logical, start = "", first
            for offset, line in enumerate(body.splitlines()):
                if not logical:
                    start = first + offset
                logical += line
                if logical.endswith("\\"):
                    logical = logical[:-1] + " "
                    continue
                if strip_comment(logical).strip():
                    out.append(Snippet("shell", logical.strip(), start))
                logical = ""
    return out


def untested_marks(text: str) -> dict[str, str]:
    return {command: " ".join(reason.split()) for command, reason in UNTESTED_MARK.findall(text)}


def shrink(command: str) -> str:
    """The command with tiny sizes (SHRINK): flag values replaced, or overrides appended."""
    for prefix, change in SHRINK.items():
        if command.startswith(prefix):
            words = shlex.split(command)
            if isinstance(change, dict):
                for flag, value in change.items():
                    assert flag in words, f"{command}: no {flag} to shrink"
                    words[words.index(flag) + 1] = value
            else:
                words += change
            return shlex.join(words)
    return command


SNIPPETS = readme_snippets(README.read_text(encoding="utf-8"))
MARKS = untested_marks(README.read_text(encoding="utf-8"))


def test_untested_commands_are_marked_with_a_reason():
    commands = [s.command for s in SNIPPETS if s.kind == "shell"]
    assert set(MARKS) == UNTESTED, "the README's <!-- untested: ... --> marks changed: update UNTESTED"
    for command, reason in MARKS.items():
        assert command in commands, f"untested mark for {command!r}, which no code block shows"
        assert len(reason) > 20, f"untested mark for {command!r} gives no reason"
    print(f"{len(commands)} shell commands and {sum(s.kind == 'python' for s in SNIPPETS)} Python snippets in the "
          f"README; {len(MARKS)} marked untested")


def test_snippets_are_found():
    """The parser sees what a reader sees (a guard against a README layout the regexes miss)."""
    text = README.read_text(encoding="utf-8")
    assert len(SNIPPETS) >= text.count("\n```bash") + text.count("\n```python")
    assert any(s.command == ".venv/bin/seqspeech transcribe talk.wav" for s in SNIPPETS)
    assert strip_comment("seqspeech synthesize 'a # b' -o x.wav  # speak") == "seqspeech synthesize 'a # b' -o x.wav"


# ------------------------------------------------------------------------------------------------------------
# the workspace: what a user has next to the README's commands


def _write_inputs(work: Path, synth_speech) -> None:
    speech, rate = sf.read(str(synth_speech("The birch canoe slid on the smooth planks.")), dtype="float32")
    other, _ = sf.read(str(synth_speech("Glue the sheet to the dark blue background.")), dtype="float32")
    sf.write(work / "talk.wav", speech, rate)
    sf.write(work / "clip.wav", other, rate)
    sf.write(work / "a.wav", speech, rate)
    sf.write(work / "b.flac", other, rate, format="FLAC")
    sf.write(work / "b.wav", other, rate)
    pause = np.zeros(rate, np.float32)
    sf.write(work / "meeting.wav", np.concatenate([pause, speech, pause * 0, pause, other, pause]), rate)
    for name, codec in (("c.mp3", "libmp3lame"), ("meeting.m4a", "aac")):
        source = "talk.wav" if name == "c.mp3" else "meeting.wav"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", source, "-c:a", codec, name], cwd=work,
                       check=True)
    (work / "meeting.wav").unlink()
    (work / "hyps.jsonl").write_text(
        json.dumps({"path": "a.wav", "text": "the birch canoe slid on the smooth planks"}) + "\n"
        + json.dumps({"path": "b.flac", "text": "glue the sheet to the dark background"}) + "\n")
    (work / "refs.jsonl").write_text(
        json.dumps({"path": "a.wav", "text": "The birch canoe slid on the smooth planks."}) + "\n"
        + json.dumps({"path": "b.flac", "text": "Glue the sheet to the dark blue background."}) + "\n")
    (work / "lines.txt").write_text("The first line.\nAnd the second one, on May 3rd.\n")
    spanish, rate = sf.read(str(synth_speech("¿Dónde está la llave?", voice="es")), dtype="float32")
    sf.write(work / "hola.wav", spanish, rate)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, synth_speech):
    """A folder laid out as a checkout: the venv, recipes, models, results scripts and the README."""
    if not (VENV / "bin" / "seqspeech").exists():
        pytest.skip(f"the tests are not running inside the project's venv ({VENV} has no bin/seqspeech)")
    for tool in ("espeak-ng", "flite", "ffmpeg"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (make setup installs it)")
    work = tmp_path_factory.mktemp("readme")
    (work / ".venv").symlink_to(VENV)
    (work / "models").symlink_to(ROOT / "models")
    shutil.copytree(ROOT / "recipes", work / "recipes")
    shutil.copytree(ROOT / "results", work / "results", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(README, work / "README.md")  # the results scripts rewrite their tables in ROOT/README.md
    _write_inputs(work, synth_speech)
    yield work
    for process in BACKGROUND:  # `seqspeech serve &`: stopped when the README's commands are done
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


BACKGROUND: list[subprocess.Popen] = []  # commands the README starts with `&`, running for the later ones
SERVER = "http://127.0.0.1:8000"


# what each command is documented to make, checked after it ran: (stdout, workspace) -> None
def _lines_of_json(out: str, n: int) -> list[dict]:
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(records) == n, out
    return records


def _exists(*names: str):
    def check(out: str, work: Path) -> None:
        for name in names:
            assert (work / name).exists(), f"{name} was not written"
    return check


def _transcript(word: str):
    def check(out: str, work: Path) -> None:
        assert word in out.lower(), out
    return check


def _evaluated(*modes: str):
    def check(out: str, work: Path) -> None:
        result = json.loads(out)
        assert set(modes) <= set(json.dumps(result).replace('"', " ").split()), out
    return check


def _demo_ran(out: str, work: Path) -> None:
    """Every shipped model transcribed the clips, then the default voice spoke Whisper's transcript and Whisper
    read it back (waveforms to words and back again)."""
    for name in ("whisper-tiny.en", "ctc-conformer-synth-en", "aed-conformer-synth-en"):
        assert f"with {name}" in out, out
    assert "word timestamps (CTC forced alignment): the@" in out, out
    assert "attention of the first clip: diagonality" in out, out
    assert "streaming " in out and "first words shown at" in out and " final " in out, out  # timed partials
    spoken = next(line for line in out.splitlines() if "transcript spoken" in line).split(":", 1)[1].strip()
    back = next(line for line in out.splitlines() if "transcribed back" in line).split(":", 1)[1].strip()
    assert spoken and back and "watermark present" in out, out


def _aligned(words: int):
    """Word timestamps as JSON lines: in order, with a score in (0, 1] (a 3-step model may spell some characters
    as <unk>, so the words themselves are not checked)."""
    def check(out: str, work: Path) -> None:
        records = _lines_of_json(out, words)
        assert [r["start"] for r in records] == sorted(r["start"] for r in records), out
        assert all(r["start"] < r["end"] and 0 < r["score"] <= 1 for r in records), out
    return check


def _some_text(lines: int):
    """At least `lines` lines of words (what the words are is the model's quality, measured in results/)."""
    def check(out: str, work: Path) -> None:
        text = [line for line in out.splitlines() if line.strip()]
        assert len(text) >= lines and all(any(c.isalpha() for c in line) for line in text), out
    return check


def _timed_partials(out: str, work: Path) -> None:
    """`--partials`: lines "  1.28s  partial  text", times in order, ending with a final that has words."""
    rows = [line.split(None, 2) for line in out.splitlines() if line.strip()]
    assert rows and all(r[0].endswith("s") and r[1] in ("partial", "final") for r in rows), out
    times = [float(r[0][:-1]) for r in rows]
    assert times == sorted(times) and rows[-1][1] == "final" and len(rows[-1]) == 3, out
    assert sum(r[1] == "partial" for r in rows) >= 2, out  # text came while the audio was still arriving


def _events(out: str, work: Path) -> None:
    """jsonl: partial and final events; the two sentences of meeting.m4a (1 s of silence between them) end as two
    finals, the second starting after the first."""
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    finals = [e for e in events if e["type"] == "final"]
    assert len(finals) >= 2, out  # at least one per sentence (a weak model's pauses may split a sentence)
    assert all(a["end"] <= b["start"] for a, b in zip(finals, finals[1:])), out
    assert any(e["type"] == "partial" for e in events), out


def _same_as_streamed(out: str, work: Path) -> None:
    """Offline transcription says what the stream of the same file says (one utterance, no endpointing)."""
    streamed = subprocess.run([".venv/bin/seqspeech", "stream", "talk.wav", "--no-endpoint"], cwd=work,
                              capture_output=True, text=True, timeout=300, check=True).stdout
    assert out.strip() == streamed.strip(), (out, streamed)


def _serving(out: str, work: Path) -> None:
    """The server started in the background answers /health within 3 minutes (it loads and warms its models)."""
    import time
    import urllib.request

    deadline = time.monotonic() + 180
    while True:
        assert BACKGROUND and BACKGROUND[-1].poll() is None, (work / "background.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(SERVER + "/health", timeout=2) as r:
                assert json.loads(r.read())["status"] == "ok"
                return
        except OSError:
            assert time.monotonic() < deadline, "the server did not answer /health within 180 s"
            time.sleep(1)


def _decodes(name: str, seconds: float):
    """``name`` is audio of at least ``seconds`` (decoded by ffprobe, independent of our reader)."""
    def check(out: str, work: Path) -> None:
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                name], cwd=work, capture_output=True, text=True, check=True).stdout
        assert float(probe) >= seconds, probe
    return check


EXPECT = {
    ".venv/bin/seqspeech serve &": _serving,
    "curl -s -F file=@talk.wav http://127.0.0.1:8000/v1/audio/transcriptions": _transcript("smooth"),
    "curl -s -F file=@talk.wav -F response_format=srt": _transcript("00:00:00,000 --> "),
    "curl -s http://127.0.0.1:8000/v1/audio/speech": _decodes("hello.mp3", 0.8),
    ".venv/bin/seqspeech export ctc-conformer-synth-en --format onnx --int8": _exists("onnx/ctc/manifest.json",
                                                                                      "onnx/ctc/ctc.onnx"),
    ".venv/bin/seqspeech export slt --format onnx": _exists("onnx/slt/acoustic.onnx", "onnx/slt/vocoder.onnx"),
    ".venv/bin/seqspeech export ctc-conformer-synth-en --format triton":
        _exists("triton/ctc-conformer-synth-en/config.pbtxt", "triton/ctc-conformer-synth-en-ctc/1/model.onnx"),
    "make demo": _demo_ran,
    '.venv/bin/seqspeech translate-text "dónde está la llave"': lambda out, work: out.strip() == "where is the key"
        or pytest.fail(out),
    '.venv/bin/seqspeech translate-text "ellos visitarán a pablo" --wait-k 3':
        lambda out, work: out.strip() == "they will visit pablo" or pytest.fail(out),
    ".venv/bin/seqspeech translate hola.wav -o hello.wav --text": lambda out, work: (
        _exists("hello.wav")(out, work), "translation: where is the key" in out or pytest.fail(out)),
    ".venv/bin/seqspeech train recipes/synth_es_en/mt.yaml": _exists("runs/mt-es-en/model/model.safetensors",
                                                                      "runs/mt-es-en/train_summary.json"),
    ".venv/bin/seqspeech transcribe talk.wav": _transcript("smooth"),
    ".venv/bin/seqspeech transcribe a.wav b.flac c.mp3 --format jsonl": lambda out, work: _lines_of_json(out, 3),
    ".venv/bin/seqspeech transcribe meeting.m4a --vad --format srt --output-dir subs/": _exists("subs/meeting.srt"),
    "cat clip.wav | .venv/bin/seqspeech transcribe - --beam-size 1": _transcript("background"),
    ".venv/bin/seqspeech evaluate hyps.jsonl --references refs.jsonl":
        lambda out, work: json.loads(out)["wer"] == pytest.approx(1 / 16) or pytest.fail(out),  # "blue" left out
    ".venv/bin/seqspeech transcribe talk.wav --model ctc-conformer-synth-en": _transcript("smooth"),
    ".venv/bin/seqspeech transcribe talk.wav --model aed-conformer-synth-en": _transcript("smooth"),
    ".venv/bin/seqspeech plot-attention aed-conformer-synth-en talk.wav -o att.png": _exists("att.png"),
    ".venv/bin/seqspeech corpus synth data/synth_en": _exists("data/synth_en/train.jsonl", "data/synth_en/test.jsonl"),
    ".venv/bin/seqspeech train recipes/synth_en/asr_ctc.yaml": _exists("runs/synth_en-asr_ctc/model.safetensors"),
    ".venv/bin/seqspeech evaluate runs/synth_en-asr_ctc": _evaluated("greedy", "beam", "beam_lm"),
    ".venv/bin/seqspeech evaluate runs/synth_en-aed_conformer": _evaluated("greedy", "beam"),
    ".venv/bin/seqspeech corpus synth data/synth_slt": _exists("data/synth_slt/train.jsonl"),
    ".venv/bin/seqspeech train recipes/synth_slt/aligner.yaml": _exists("runs/synth_slt-aligner/model.safetensors"),
    ".venv/bin/seqspeech train recipes/synth_slt/fastspeech2.yaml":
        _exists("runs/synth_slt-fastspeech2-30min/model.safetensors"),
    ".venv/bin/seqspeech train recipes/synth_slt/fastspeech2_continue.yaml":
        _exists("runs/synth_slt-fastspeech2/model.safetensors"),
    ".venv/bin/seqspeech align clip.wav": _aligned(3),
    ".venv/bin/seqspeech train recipes/synth_en/aed_conformer.yaml":
        _exists("runs/synth_en-aed_conformer/model.safetensors"),
    ".venv/bin/seqspeech train recipes/synth_en/las_location.yaml":
        _exists("runs/synth_en-las_location/model.safetensors"),
    ".venv/bin/seqspeech plot-attention runs/synth_en-las_location": _exists("attention.png"),
    ".venv/bin/python results/asr_attention_synth.py": _exists("results/asr_attention_synth.json"),
    ".venv/bin/seqspeech synthesize 'Dr. Smith paid $5 on May 3rd.' -o out.wav": _exists("out.wav"),
    ".venv/bin/seqspeech synthesize 'Dr. Smith paid $5 on May 3rd.' -o taco.wav": _exists("taco.wav"),
    ".venv/bin/seqspeech synthesize 'Hello from my own voice.'": _exists("mine.wav"),
    ".venv/bin/seqspeech synthesize --input lines.txt": _exists("wavs/0001.wav", "wavs/0002.wav"),
    ".venv/bin/seqspeech detect-watermark out.wav": _transcript("present"),
    ".venv/bin/seqspeech stream talk.wav --partials --realtime": _timed_partials,
    ".venv/bin/seqspeech stream talk.wav": _some_text(1),
    ".venv/bin/seqspeech stream meeting.m4a --format jsonl": _events,
    "ffmpeg -v error -i talk.wav -f s16le -ac 1 -ar 16000 - | .venv/bin/seqspeech stream -": _some_text(1),
    ".venv/bin/seqspeech transcribe talk.wav --model rnnt-synth-en": _same_as_streamed,
    ".venv/bin/seqspeech train recipes/synth_en/asr_rnnt_streaming.yaml": _exists("runs/synth_en-asr_rnnt/model.safetensors"),
    ".venv/bin/seqspeech train recipes/synth_en/asr_rnnt_from_ctc.yaml": _exists("runs/synth_en-asr_rnnt_ctc/model.safetensors"),
    ".venv/bin/seqspeech evaluate runs/synth_en-asr_rnnt": _evaluated("greedy", "beam", "ctc_greedy"),
    ".venv/bin/python results/asr_rnnt_synth.py": _exists("results/asr_rnnt_synth.json"),
}


def _expectation(snippet: Snippet):
    """The check of the longest EXPECT prefix the command starts with."""
    prefixes = [p for p in EXPECT if snippet.command.startswith(p)]
    return EXPECT[max(prefixes, key=len)] if prefixes else None


RUNNABLE = [s for s in SNIPPETS if s.kind == "python" or s.command not in UNTESTED]


def test_every_command_has_a_check():
    """A README command that only has to exit 0 is a weak test: each shell command says what it must make."""
    missing = [str(s) for s in RUNNABLE if s.kind == "shell" and _expectation(s) is None]
    assert not missing, f"add an EXPECT entry for: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("snippet", RUNNABLE, ids=str)
def test_readme_snippet_runs(snippet: Snippet, workspace: Path):
    if snippet.kind == "python":
        result = subprocess.run([".venv/bin/python", "-"], input=snippet.text, cwd=workspace, capture_output=True,
                                text=True, timeout=600)
    elif snippet.command.endswith("&"):  # a server: it keeps running for the commands after it
        log = open(workspace / "background.log", "w")
        BACKGROUND.append(subprocess.Popen(["bash", "-c", snippet.command[:-1]], cwd=workspace, stdout=log,
                                           stderr=subprocess.STDOUT))
        result = subprocess.CompletedProcess(snippet.command, 0, "", "")
    else:
        command = shrink(snippet.command)
        cwd = ROOT if command.startswith("make ") else workspace
        result = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=cwd, capture_output=True,
                                text=True, timeout=900)
    report = f"{snippet}\nexit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert result.returncode == 0, report
    assert "Traceback" not in result.stderr, report
    check = _expectation(snippet) if snippet.kind == "shell" else None
    if check is not None:
        check(result.stdout, workspace)
