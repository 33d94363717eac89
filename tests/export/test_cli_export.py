"""`seqspeech export`: ONNX and Triton outputs of a small saved model, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from seqspeech import load_model
from seqspeech.cli import main
from seqspeech.export import load_onnx_model


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_onnx_writes_a_runnable_folder(saved_ctc: Path, tmp_path: Path, capsys, clips) -> None:
    out = tmp_path / "nested" / "onnx"
    code, stdout, err = _run(capsys, "export", str(saved_ctc), "--format", "onnx", "-o", str(out))
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary == {"output": str(out), "format": "onnx", "family": "ctc", "int8": False,
                       "files": ["ctc.onnx"]}
    reference = load_model(saved_ctc, device="cpu", lm=False)
    onnx_asr = load_onnx_model(out)
    assert onnx_asr.name == "model"  # the file's stem
    assert [t.text for t in onnx_asr.transcribe_batch(clips)] == [t.text for t in reference.transcribe_batch(clips)]
    code, _, err = _run(capsys, "export", str(saved_ctc), "-o", str(out), "--opset", "18")  # into the same folder
    assert code == 0, err
    assert json.loads((out / "manifest.json").read_text())["opset"] == 18
    assert onnx.load(str(out / "ctc.onnx")).opset_import[0].version == 18


def test_export_triton_int8_writes_a_repository(saved_ctc: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "repo"
    code, stdout, err = _run(capsys, "export", str(saved_ctc), "--format", "triton", "--int8", "--name", "asr",
                             "-o", str(out))
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["models"] == ["asr", "asr-ctc", "asr-features", "asr-greedy"] and summary["int8"] is True
    ops = {node.op_type for node in onnx.load(str(out / "asr-ctc" / "1" / "model.onnx")).graph.node}
    assert "MatMulInteger" in ops
    assert 'platform: "ensemble"' in (out / "asr" / "config.pbtxt").read_text()
    assert not any(p.name == "manifest.json" for p in out.rglob("*"))  # the ONNX export stayed in a temp folder


@pytest.mark.parametrize(
    "argv, message",
    [
        (["no-such-model", "-o", "{tmp}/x"], "no-such-model: no such file or directory"),
        (["{model}", "-o", "{tmp}/file"], "exists and is not a folder"),
        (["{model}", "-o", "{tmp}/x", "--opset", "9"], "opset must be an int from 14 to 20"),
        (["{model}", "-o", "{tmp}/x", "--name", "n"], "--name is for --format triton"),
    ],
)
def test_export_errors_are_one_line(saved_ctc: Path, tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    (tmp_path / "file").write_text("x")
    argv = [a.format(tmp=tmp_path, model=saved_ctc) for a in argv]
    code, _, err = _run(capsys, "export", *argv)
    assert code == 2
    assert err.startswith("seqspeech: error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "x").exists()


def test_export_help_lists_the_formats(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["export", "--help"])
    assert info.value.code == 0
    assert "{onnx,triton}" in capsys.readouterr().out
