"""Triton model repositories: every ``config.pbtxt`` parsed strictly and checked against the ONNX graphs, and every
ensemble run step by step (ONNX models through ONNX Runtime, Python-backend models through a stand-in for Triton's
``triton_python_backend_utils``) against the PyTorch models.

The parser below reads the protobuf text format subset Triton configs use and knows the schema of the fields we
write (a typo, a wrong type or a repeated singular field is an error), so no Triton client package is needed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from seqspeech.audio.constants import N_SAMPLES
from seqspeech.audio.features import log_mel_spectrogram
from seqspeech.errors import ModelLoadError, OutputError
from seqspeech.export import load_onnx_model, write_triton_repository

# ----------------------------------------------------------------------------------------------------------------
# a strict reader of Triton's config.pbtxt

_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|([{}\[\]:,;]))')
STR, INT, ENUM = "str", "int", "enum"
# message -> field -> (kind or message name, repeated)
SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    "ModelConfig": {"name": (STR, False), "platform": (STR, False), "backend": (STR, False),
                    "max_batch_size": (INT, False), "input": ("Tensor", True), "output": ("Tensor", True),
                    "dynamic_batching": ("DynamicBatching", False), "instance_group": ("InstanceGroup", True),
                    "ensemble_scheduling": ("EnsembleScheduling", False)},
    "Tensor": {"name": (STR, False), "data_type": (ENUM, False), "dims": (INT, True), "reshape": ("Reshape", False)},
    "Reshape": {"shape": (INT, True)},
    "DynamicBatching": {"max_queue_delay_microseconds": (INT, False)},
    "InstanceGroup": {"count": (INT, False), "kind": (ENUM, False)},
    "EnsembleScheduling": {"step": ("Step", True)},
    "Step": {"model_name": (STR, False), "model_version": (INT, False), "input_map": ("Map", True),
             "output_map": ("Map", True)},
    "Map": {"key": (STR, False), "value": (STR, False)},
}
ENUMS = {"data_type": re.compile(r"TYPE_(FP32|FP16|FP64|INT64|INT32|INT16|INT8|UINT8|BOOL|STRING)"),
         "kind": re.compile(r"KIND_(CPU|GPU|AUTO)")}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos:].strip():
                raise ValueError(f"unexpected text at {pos}: {text[pos:pos + 20]!r}")
            break
        pos = match.end()
        comment, string, number, ident, punct = match.groups()
        if comment is None:
            out.append(("str", json.loads(string)) if string else ("int", number) if number
                       else ("ident", ident) if ident else ("punct", punct))
    return out


def parse_pbtxt(text: str) -> dict[str, Any]:
    """``config.pbtxt`` -> nested dicts (repeated fields as lists), validated against :data:`SCHEMA`."""
    tokens = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(kind: str, value: str | None = None) -> str:
        nonlocal pos
        token = peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            raise ValueError(f"expected {value or kind}, got {token}")
        pos += 1
        return token[1]

    def scalar(kind: str, field: str) -> Any:
        token = peek()
        if kind == STR:
            return take("str")
        if kind == INT:
            value = take("int")
            if "." in value:
                raise ValueError(f"{field}: expected an integer, got {value}")
            return int(value)
        value = take("ident")
        if not ENUMS[field].fullmatch(value):
            raise ValueError(f"{field}: unknown enum value {value} ({token})")
        return value

    def message(schema: str, end: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        while peek() is not None and peek() != ("punct", end):
            name = take("ident")
            if name not in SCHEMA[schema]:
                raise ValueError(f"{schema} has no field {name!r}")
            kind, repeated = SCHEMA[schema][name]
            if name in fields and not repeated:
                raise ValueError(f"{schema}.{name} given twice")
            is_message = kind in SCHEMA
            if peek() == ("punct", ":"):
                take("punct", ":")
            elif not is_message:
                raise ValueError(f"{schema}.{name}: a scalar field needs ':'")
            values = []
            if peek() == ("punct", "["):
                if not repeated:
                    raise ValueError(f"{schema}.{name} is not repeated")
                take("punct", "[")
                while peek() != ("punct", "]"):
                    values.append(item(kind, name))
                    if peek() == ("punct", ","):
                        take("punct", ",")
                take("punct", "]")
            else:
                values.append(item(kind, name))
            fields[name] = fields.get(name, []) + values if repeated else values[0]
            if peek() in (("punct", ","), ("punct", ";")):  # text format allows a separator after a field
                take(*peek())
        if end is not None:
            take("punct", end)
        return fields

    def item(kind: str, name: str) -> Any:
        if kind in SCHEMA:
            take("punct", "{")
            return message(kind, "}")
        return scalar(kind, name)

    config = message("ModelConfig", None)
    if pos != len(tokens):
        raise ValueError(f"trailing tokens: {tokens[pos:]}")
    return config


def test_parser_is_strict() -> None:
    good = 'name: "m" max_batch_size: 4 input [ { name: "x" data_type: TYPE_FP32 dims: [ -1, 8 ] } ]'
    assert parse_pbtxt(good)["input"][0]["dims"] == [-1, 8]
    for bad in ('name: "m" nmae: "x"', 'max_batch_size: 1.5', 'name: "a" name: "b"',
                'input [ { data_type: TYPE_FLOAT32 } ]', 'dynamic_batching { max_queue_delay_microseconds 5 }',
                'name: "m" }'):
        with pytest.raises(ValueError):
            parse_pbtxt(bad)


# ----------------------------------------------------------------------------------------------------------------
# checking a repository

ONNX_TYPES = {1: "TYPE_FP32", 7: "TYPE_INT64", 9: "TYPE_BOOL", 6: "TYPE_INT32"}


def _full_shape(tensor: dict[str, Any], batched: bool) -> list[int]:
    dims = tensor["reshape"].get("shape", []) if "reshape" in tensor else tensor["dims"]
    if "reshape" in tensor:
        assert tensor["dims"] == [1]
    return ([-1] if batched else []) + list(dims)


def check_repository(repo: Path) -> dict[str, dict[str, Any]]:
    """Parse every config and check it against its model files; returns ``{model: config}``."""
    configs = {folder.name: parse_pbtxt((folder / "config.pbtxt").read_text()) for folder in repo.iterdir()}
    assert configs
    for name, config in configs.items():
        folder = repo / name
        assert config["name"] == name
        batched = config["max_batch_size"] > 0
        if config.get("platform") == "onnxruntime_onnx":
            graph = onnx.load(str(folder / "1" / "model.onnx"), load_external_data=False).graph
            for declared, actual in ((config["input"], graph.input), (config["output"], graph.output)):
                assert [t["name"] for t in declared] == [v.name for v in actual]
                for tensor, value in zip(declared, actual):
                    shape = [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]
                    assert _full_shape(tensor, batched) == shape, (name, tensor["name"])
                    assert tensor["data_type"] == ONNX_TYPES[value.type.tensor_type.elem_type]
                    if batched:
                        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
            assert ("dynamic_batching" in config) == batched
            if batched:
                assert config["dynamic_batching"] == {"max_queue_delay_microseconds": 5000}
        elif config.get("backend") == "python":
            assert {"model.py", "assets.npz", "params.json"} <= {p.name for p in (folder / "1").iterdir()}
        else:
            assert config["platform"] == "ensemble" and (folder / "1").is_dir()  # Triton wants the version folder
            _check_ensemble(config, configs)
    return configs


def _check_ensemble(config: dict[str, Any], configs: dict[str, dict[str, Any]]) -> None:
    available = {t["name"]: t["data_type"] for t in config["input"]}
    for step in config["ensemble_scheduling"]["step"]:
        model = configs[step["model_name"]]
        assert config["max_batch_size"] <= model["max_batch_size"] or model["max_batch_size"] == 0
        inputs = {t["name"]: t["data_type"] for t in model["input"]}
        outputs = {t["name"]: t["data_type"] for t in model["output"]}
        for pair in step["input_map"]:
            assert pair["key"] in inputs and available[pair["value"]] == inputs[pair["key"]], pair
        for pair in step["output_map"]:
            assert pair["key"] in outputs
            available[pair["value"]] = outputs[pair["key"]]
    for tensor in config["output"]:
        assert available[tensor["name"]] == tensor["data_type"]


# ----------------------------------------------------------------------------------------------------------------
# running a repository without Triton


class _Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self.name, self.array = name, array

    def as_numpy(self) -> np.ndarray:
        return self.array


def _backend_utils() -> types.ModuleType:
    """The parts of Triton's ``triton_python_backend_utils`` our Python models use."""
    module = types.ModuleType("triton_python_backend_utils")
    module.Tensor = _Tensor
    module.get_input_tensor_by_name = lambda request, name: _Tensor(name, request[name])

    class TritonError(Exception):
        pass

    class InferenceResponse:
        def __init__(self, output_tensors, error=None) -> None:
            self.outputs, self.error = {t.name: t.array for t in output_tensors}, error

    module.TritonError, module.InferenceResponse = TritonError, InferenceResponse
    return module


def run_model(repo: Path, name: str, config: dict[str, Any], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One request through one model of the repository."""
    folder = repo / name
    if config.get("platform") == "onnxruntime_onnx":
        session = ort.InferenceSession(str(folder / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
        return dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs)))
    spec = importlib.util.spec_from_file_location(f"triton_{name}", folder / "1" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    model.initialize({"model_repository": str(folder), "model_version": "1", "model_config": json.dumps(config)})
    (response,) = model.execute([inputs])
    assert response.error is None, response.error
    return response.outputs


def run_ensemble(repo: Path, configs: dict[str, dict[str, Any]], name: str,
                 inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    tensors = dict(inputs)
    for step in configs[name]["ensemble_scheduling"]["step"]:
        feed = {p["key"]: tensors[p["value"]] for p in step["input_map"]}
        outputs = run_model(repo, step["model_name"], configs[step["model_name"]], feed)
        tensors.update({p["value"]: outputs[p["key"]] for p in step["output_map"]})
    return {t["name"]: tensors[t["name"]] for t in configs[name]["output"]}


@pytest.fixture(autouse=True)
def backend_utils(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _backend_utils())


# ----------------------------------------------------------------------------------------------------------------
# the families


def test_ctc_repository_and_ensemble_transcribe_like_the_runtime(exported, clips, tmp_path: Path) -> None:
    asr, folder = exported("ctc")
    repo = write_triton_repository(folder, tmp_path / "repo")
    configs = check_repository(repo)
    assert set(configs) == {"tiny-ctc", "tiny-ctc-ctc", "tiny-ctc-features", "tiny-ctc-greedy"}
    assert configs["tiny-ctc-ctc"]["max_batch_size"] == 16
    onnx_asr = load_onnx_model(folder)
    for clip in clips:
        features = run_model(repo, "tiny-ctc-features", configs["tiny-ctc-features"], {"audio": clip[None]})
        with torch.inference_mode():
            expected = asr.frontend(torch.from_numpy(clip))
        np.testing.assert_allclose(features["features"][0], expected.numpy(), atol=2e-3, rtol=1e-4)
        assert features["feature_lens"].tolist() == [expected.shape[0]]
        out = run_ensemble(repo, configs, "tiny-ctc", {"audio": clip[None]})
        text = onnx_asr.transcribe(clip, beam_size=1).text
        assert text and out["text"][0, 0].decode() == text
        tokens = out["tokens"][0]
        assert asr.tokenizer.decode(tokens[tokens >= 0].tolist()) == text


def test_whisper_repository_features_match_the_log_mel(exported, clips, tmp_path: Path) -> None:
    asr, folder = exported("whisper")
    repo = write_triton_repository(folder, tmp_path / "repo", name="tw")
    configs = check_repository(repo)
    assert set(configs) == {"tw", "tw-encoder", "tw-cross_kv", "tw-decoder", "tw-features"}
    assert configs["tw-decoder"]["max_batch_size"] == 16  # every decoder tensor is batch-first
    mel = run_model(repo, "tw-features", configs["tw-features"], {"audio": clips[1][None]})["mel"]
    content = len(clips[1]) // 160
    n_frames = 100  # this model's window: 2 * n_audio_ctx
    expected = log_mel_spectrogram(np.pad(clips[1][: n_frames * 160], (0, N_SAMPLES))).numpy()[:, :n_frames]
    expected[:, content:] = 0  # openai-whisper pads a short window's log-mel with zeros
    np.testing.assert_allclose(mel[0], expected, atol=1e-4)
    out = run_ensemble(repo, configs, "tw", {"audio": clips[1][None]})
    with torch.inference_mode():
        features = asr.model.embed_audio(torch.from_numpy(mel))
        cross_k0 = asr.model.decoder.init_state(features).cross_k[0]
    np.testing.assert_allclose(out["features"], features.numpy(), atol=1e-3)
    np.testing.assert_allclose(out["cross_k_0"], cross_k0.numpy(), atol=1e-3)


def test_tts_repository_ensemble_speaks_like_pytorch(exported, tmp_path: Path) -> None:
    voice, folder = exported("voice")
    repo = write_triton_repository(folder, tmp_path / "repo", name="voice")
    configs = check_repository(repo)
    assert configs["voice-acoustic"]["max_batch_size"] == 16  # the controls are per row
    tokens = np.array([voice.frontend.encode("hello world")])
    inputs = {"tokens": tokens, "token_lens": np.array([tokens.shape[1]]), "speed": np.array([1.1], np.float32),
              "pitch_shift": np.array([-1.0], np.float32), "energy_scale": np.array([1.0], np.float32)}
    out = run_ensemble(repo, configs, "voice", inputs)
    with torch.inference_mode():
        mel = voice.acoustic.model.infer(torch.from_numpy(tokens), speed=1.1, pitch_shift=-1.0)
        wave = voice.vocoder.infer(mel.mels)
    assert out["mel_lens"].tolist() == mel.mel_lens.tolist()
    np.testing.assert_allclose(out["wave"], wave.numpy(), atol=1e-4)


def test_transducer_repository_declares_unbatched_streaming_caches(exported, tmp_path: Path) -> None:
    _, folder = exported("rnnt")
    configs = check_repository(write_triton_repository(folder, tmp_path / "repo"))
    assert configs["tiny-rnnt-encoder_chunk"]["max_batch_size"] == 0  # caches are (layers, batch, ...)
    assert configs["tiny-rnnt-predictor"]["max_batch_size"] == 0  # LSTM state is (layers, N, hidden)
    assert configs["tiny-rnnt-joiner"]["max_batch_size"] == 16
    assert "tiny-rnnt-features" in configs and "tiny-rnnt" not in configs  # no ensemble: the search is a loop


def test_repository_errors(tmp_path: Path, exported) -> None:
    with pytest.raises(ModelLoadError, match="not an ONNX export folder"):
        write_triton_repository(tmp_path, tmp_path / "repo")
    _, folder = exported("ctc")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        write_triton_repository(folder, tmp_path / "file")
