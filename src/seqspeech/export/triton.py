"""A Triton Inference Server model repository from an ONNX export (:mod:`seqspeech.export.onnx`).

``write_triton_repository(export_dir, repo_dir)`` writes one model folder per graph (``config.pbtxt`` with platform
``onnxruntime_onnx`` and ``1/model.onnx``), named ``<model>-<graph>``. A graph whose every input and output has the
``batch`` axis first gets ``max_batch_size`` and ``dynamic_batching { max_queue_delay_microseconds: 5000 }``
(dims then leave the batch axis out; a tensor that is only ``(batch,)`` is declared ``dims: [ 1 ]`` with
``reshape: { shape: [ ] }``); the others (stacked streaming caches, TTS controls) get ``max_batch_size: 0`` and full
dims. Dynamic axes are ``-1``.

Per family it adds Python-backend models (``1/model.py`` using numpy only, with their constants in
``1/assets.npz`` and ``1/params.json``) and an ensemble named ``<model>``:

* ctc: ``<model>-features`` (Kaldi fbank of 16 kHz ``audio``) -> ``<model>-ctc`` -> ``<model>-greedy`` (greedy CTC:
  ``tokens``, padded with -1, and ``text``);
* whisper: ``<model>-features`` (the log-mel of the first 30 s, zero-padded as openai-whisper pads) ->
  ``<model>-encoder`` -> ``<model>-cross_kv``: the audio features and the cross-attention cache; the token loop
  calls ``<model>-decoder`` with its KV cache from the client (an autoregressive loop is no ensemble);
* transducer: ``<model>-features`` beside the streaming graphs (the search runs client-side);
* tts: ``<model>-acoustic`` -> ``<model>-vocoder`` (token ids in, ``wave`` out; text to ids is the client's).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..fileio import atomic_path, check_output_dir, write_atomic
from .onnx import BATCH, read_manifest

__all__ = ["TensorSpec", "graph_io", "model_config", "write_triton_repository"]

PLATFORM = "onnxruntime_onnx"
MAX_BATCH_SIZE = 16
QUEUE_DELAY_US = 5000
VERSION = "1"
ONNX_TYPES = {1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 5: "TYPE_INT16", 6: "TYPE_INT32", 7: "TYPE_INT64",
              8: "TYPE_STRING", 9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64"}


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: full shape (``-1`` dynamic) and whether its first axis is the batch."""

    name: str
    data_type: str
    dims: tuple[int, ...]
    batch_first: bool = True


def graph_io(path: str | os.PathLike) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The inputs and outputs of an ONNX graph, read with ``onnx.load``."""
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - the export extra
        raise ConfigError(f"writing a Triton repository needs the onnx package (pip install 'seqspeech[export]'): "
                          f"{e}") from None
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}

    def spec(value: Any) -> TensorSpec:
        tensor = value.type.tensor_type
        if tensor.elem_type not in ONNX_TYPES:
            raise ConfigError(f"{path}: tensor {value.name!r} has ONNX type {tensor.elem_type}, which Triton lacks")
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        first = tensor.shape.dim[0] if tensor.shape.dim else None
        batch = first is not None and first.HasField("dim_param") and first.dim_param == BATCH
        return TensorSpec(value.name, ONNX_TYPES[tensor.elem_type], dims, batch)

    return ([spec(v) for v in graph.input if v.name not in initializers], [spec(v) for v in graph.output])


def _dims(values: tuple[int, ...]) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def _tensor(spec: TensorSpec, batched: bool) -> str:
    dims = spec.dims[1:] if batched else spec.dims
    lines = [f'    name: "{spec.name}"', f"    data_type: {spec.data_type}"]
    if dims:
        lines.append(f"    dims: {_dims(dims)}")
    else:  # a scalar per batch row (or a scalar): Triton wants one element, reshaped away
        lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
    return "  {\n" + "\n".join(lines) + "\n  }"


def model_config(name: str, inputs: list[TensorSpec], outputs: list[TensorSpec], *, platform: str | None = PLATFORM,
                 backend: str | None = None, max_batch_size: int = MAX_BATCH_SIZE, batching: bool = True,
                 extra: str = "") -> str:
    """``config.pbtxt`` text: ``max_batch_size`` applies when every tensor is batch-first (else 0), and then
    (``batching``) dynamic batching too."""
    batched = max_batch_size > 0 and all(s.batch_first for s in inputs + outputs)
    head = [f'name: "{name}"']
    head.append(f'platform: "{platform}"' if platform else f'backend: "{backend}"')
    head.append(f"max_batch_size: {max_batch_size if batched else 0}")
    body = [
        "input [\n" + ",\n".join(_tensor(s, batched) for s in inputs) + "\n]",
        "output [\n" + ",\n".join(_tensor(s, batched) for s in outputs) + "\n]",
    ]
    if batched and batching:
        body.append(f"dynamic_batching {{ max_queue_delay_microseconds: {QUEUE_DELAY_US} }}")
    if platform != "ensemble":
        body.append("instance_group [ { count: 1, kind: KIND_CPU } ]")
    return "\n".join(head + body + ([extra] if extra else [])).rstrip() + "\n"


def _ensemble(name: str, inputs: list[TensorSpec], outputs: list[TensorSpec],
              steps: list[tuple[str, dict[str, str], dict[str, str]]]) -> tuple[str, str]:
    """An ensemble ``name``: ``steps`` of ``(model, {its input: ensemble tensor}, {its output: ensemble tensor})``."""
    blocks = []
    for model, input_map, output_map in steps:
        maps = [f'      input_map {{ key: "{k}" value: "{v}" }}' for k, v in input_map.items()]
        maps += [f'      output_map {{ key: "{k}" value: "{v}" }}' for k, v in output_map.items()]
        blocks.append(f'    {{\n      model_name: "{model}"\n      model_version: -1\n' + "\n".join(maps) + "\n    }")
    scheduling = "ensemble_scheduling {\n  step [\n" + ",\n".join(blocks) + "\n  ]\n}"
    return name, model_config(name, inputs, outputs, platform="ensemble", batching=False, extra=scheduling)


# ----------------------------------------------------------------------------------------------------------------
# Python-backend models: one generic TritonPythonModel around a numpy `compute(inputs, assets, params)`

PYTHON_MODEL = '''"""Triton Python-backend model written by seqspeech (numpy only): {doc}"""

import json
import os

import numpy as np

{compute}

class TritonPythonModel:
    def initialize(self, args):
        folder = os.path.join(args["model_repository"], args["model_version"])
        with np.load(os.path.join(folder, "assets.npz")) as assets:
            self.assets = {{key: assets[key] for key in assets.files}}
        with open(os.path.join(folder, "params.json"), encoding="utf-8") as handle:
            self.params = json.load(handle)
        config = json.loads(args["model_config"])
        self.inputs = [tensor["name"] for tensor in config["input"]]
        self.outputs = [tensor["name"] for tensor in config["output"]]

    def execute(self, requests):
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            try:
                arrays = {{name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.inputs}}
                result = compute(arrays, self.assets, self.params)
                tensors = [pb_utils.Tensor(name, result[name]) for name in self.outputs]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except Exception as error:  # one bad request fails alone
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(error))))
        return responses
'''

FBANK_COMPUTE = '''def fbank(audio, assets, params):
    """Kaldi fbank (snip_edges) of float samples in [-1, 1]: (frames, bins), as seqspeech's FbankFrontend."""
    length, shift = params["frame_length"], params["frame_shift"]
    wave = audio.astype(np.float32) * np.float32(params["scale"])
    count = 0 if wave.size < length else (wave.size - length) // shift + 1
    if count == 0:
        return np.zeros((0, assets["mel_banks"].shape[1]), np.float32)
    index = np.arange(length)[None, :] + shift * np.arange(count)[:, None]
    frames = wave[index]
    frames = frames - frames.mean(axis=1, keepdims=True)
    previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    frames = (frames - np.float32(params["preemphasis"]) * previous) * assets["window"]
    spectrum = np.fft.rfft(frames, n=params["padded_length"], axis=1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    return np.log(np.maximum(power @ assets["mel_banks"], np.float32(params["energy_floor"])))


def compute(inputs, assets, params):
    audio = inputs["audio"]
    features = np.stack([fbank(row, assets, params) for row in audio.reshape(audio.shape[0], -1)])
    return {"features": features.astype(np.float32),
            "feature_lens": np.full(features.shape[0], features.shape[1], np.int64)}
'''

WHISPER_COMPUTE = '''def log_mel(audio, assets, params):
    """Whisper's normalised log-mel of the first 30 s of 16 kHz audio, frames past the audio zero (as
    openai-whisper pads a window): (n_mels, n_frames)."""
    n_fft, hop, n_frames = params["n_fft"], params["hop_length"], params["n_frames"]
    audio = audio.astype(np.float32)[: n_frames * hop]
    content = audio.size // hop
    wave = np.pad(np.concatenate([audio, np.zeros(n_frames * hop, np.float32)]), n_fft // 2, mode="reflect")
    count = (wave.size - n_fft) // hop  # the last frame is dropped, as Whisper does
    index = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]
    spectrum = np.fft.rfft(wave[index] * assets["window"], axis=1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    log_spec = np.log10(np.maximum(assets["filters"] @ power.T, np.float32(1e-10)))
    log_spec = (np.maximum(log_spec, log_spec.max() - 8.0) + 4.0) / 4.0
    mel = np.zeros((log_spec.shape[0], n_frames), np.float32)
    mel[:, :content] = log_spec[:, :content]
    return mel


def compute(inputs, assets, params):
    audio = inputs["audio"]
    return {"mel": np.stack([log_mel(row, assets, params) for row in audio.reshape(audio.shape[0], -1)])}
'''

CTC_GREEDY_COMPUTE = '''def greedy(log_probs, length, params):
    """Best path, repeats merged, blanks dropped: token ids and their text."""
    best = log_probs[:length].argmax(axis=-1)
    keep = np.ones(best.size, bool)
    keep[1:] = best[1:] != best[:-1]
    ids = best[keep & (best != params["blank"])]
    pieces = params["pieces"]
    text = "".join(pieces[i] for i in ids if not params["special"][i]).replace(params["space"], " ")
    return ids, " ".join(text.split())


def compute(inputs, assets, params):
    rows = [greedy(lp, int(n), params) for lp, n in zip(inputs["log_probs"], inputs["out_lens"].reshape(-1))]
    width = max([len(ids) for ids, _ in rows] + [0])
    tokens = np.full((len(rows), width), -1, np.int64)
    for i, (ids, _) in enumerate(rows):
        tokens[i, : len(ids)] = ids
    return {"tokens": tokens, "text": np.array([[text.encode("utf-8")] for _, text in rows], dtype=object)}
'''


def _python_model(folder: Path, name: str, doc: str, compute: str, inputs: list[TensorSpec],
                  outputs: list[TensorSpec], assets: dict[str, np.ndarray], params: dict[str, Any]) -> None:
    write_atomic(folder / "config.pbtxt", model_config(name, inputs, outputs, platform=None, backend="python",
                                                       batching=False))
    write_atomic(folder / VERSION / "model.py", PYTHON_MODEL.format(doc=doc, compute=compute))
    write_atomic(folder / VERSION / "params.json", json.dumps(params, indent=1) + "\n")
    with atomic_path(folder / VERSION / "assets.npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in assets.items()})


AUDIO = TensorSpec("audio", "TYPE_FP32", (-1, -1))


def _fbank_model(folder: Path, name: str, features: dict[str, Any]) -> None:
    from ..audio.features import KALDI_ENERGY_EPS
    from ..config import from_mapping
    from ..data.dataset import INT16_SCALE, FeatureConfig, build_frontend

    frontend = build_frontend(from_mapping(FeatureConfig, features, "features"))
    fb = frontend.fbank
    bins = fb.mel_banks.shape[1]
    params = {"frame_length": fb.frame_length, "frame_shift": fb.frame_shift, "padded_length": fb.padded_length,
              "preemphasis": fb.preemphasis, "scale": INT16_SCALE, "energy_floor": KALDI_ENERGY_EPS}
    if not fb.remove_dc_offset:  # pragma: no cover - every FeatureConfig removes it
        raise ConfigError("the Triton fbank model assumes DC removal")
    _python_model(folder, name, "Kaldi fbank features of 16 kHz audio", FBANK_COMPUTE, [AUDIO],
                  [TensorSpec("features", "TYPE_FP32", (-1, -1, bins)), TensorSpec("feature_lens", "TYPE_INT64", (-1,))],
                  {"window": fb.window.numpy(), "mel_banks": fb.mel_banks.numpy()}, params)


def _whisper_features_model(folder: Path, name: str, dims: dict[str, Any]) -> None:
    import torch

    from ..audio.constants import HOP_LENGTH, N_FFT
    from ..audio.features import mel_filters

    n_frames = 2 * dims["n_audio_ctx"]
    params = {"n_fft": N_FFT, "hop_length": HOP_LENGTH, "n_frames": n_frames}
    _python_model(folder, name, "Whisper's log-mel of a 30-second window", WHISPER_COMPUTE, [AUDIO],
                  [TensorSpec("mel", "TYPE_FP32", (-1, dims["n_mels"], n_frames))],
                  {"window": torch.hann_window(N_FFT).numpy(), "filters": mel_filters(dims["n_mels"]).numpy()},
                  params)


def _ctc_greedy_model(folder: Path, name: str, manifest: dict[str, Any], vocab: int) -> None:
    from ..text.tokenizers import tokenizer_from_dict

    tokenizer = tokenizer_from_dict(manifest["tokenizer"], "manifest.json")
    if hasattr(tokenizer, "id_to_piece"):
        pieces = [tokenizer.id_to_piece(i) for i in range(vocab)]
    else:
        pieces = list(manifest["tokenizer"]["symbols"])
    params = {"blank": int(manifest["config"]["blank"]), "pieces": pieces, "space": "\u2581",
              "special": [bool(re.fullmatch(r"<[^>]*>", p)) for p in pieces]}
    _python_model(folder, name, "greedy CTC decoding to token ids and text", CTC_GREEDY_COMPUTE,
                  [TensorSpec("log_probs", "TYPE_FP32", (-1, -1, vocab)), TensorSpec("out_lens", "TYPE_INT64", (-1,))],
                  [TensorSpec("tokens", "TYPE_INT64", (-1, -1)), TensorSpec("text", "TYPE_STRING", (-1, 1))],
                  {}, params)


def _write_ensemble(repo: Path, config: tuple[str, str]) -> None:
    """An ensemble's folder: its config and the empty version folder Triton requires."""
    name, text = config
    write_atomic(repo / name / "config.pbtxt", text)
    (repo / name / VERSION).mkdir(exist_ok=True)


def _model_name(name: str) -> str:
    """A Triton model name from ours: letters, digits, ``-``, ``_`` and ``.``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "model"


def _io(specs: list[TensorSpec], names: list[str]) -> list[TensorSpec]:
    by_name = {s.name: s for s in specs}
    return [by_name[n] for n in names]


def write_triton_repository(export_dir: str | os.PathLike, repo_dir: str | os.PathLike, *,
                            name: str | None = None, max_batch_size: int = MAX_BATCH_SIZE) -> Path:
    """Lay out the export in ``export_dir`` as a Triton model repository in ``repo_dir`` (made if missing; model
    folders of the same names are replaced). ``name``: the ensemble's name and the prefix of every model
    (default: the exported model's name). Returns ``repo_dir``.

    Raises:
        ModelLoadError: ``export_dir`` is not an ONNX export; OutputError: ``repo_dir`` cannot be written.
    """
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise ConfigError(f"max_batch_size must be an int >= 1, got {max_batch_size!r}")
    source = Path(export_dir)
    manifest = read_manifest(source)
    repo = check_output_dir(repo_dir)
    prefix = _model_name(name or manifest["name"])
    io: dict[str, tuple[list[TensorSpec], list[TensorSpec]]] = {}
    for graph, info in manifest["graphs"].items():
        model = f"{prefix}-{graph}"
        folder = repo / model
        if folder.exists():
            shutil.rmtree(folder)
        inputs, outputs = io[graph] = graph_io(source / info["file"])
        write_atomic(folder / "config.pbtxt", model_config(model, inputs, outputs, max_batch_size=max_batch_size))
        with atomic_path(folder / VERSION / "model.onnx") as tmp:
            shutil.copyfile(source / info["file"], tmp)
    family = manifest["family"]
    if family in ("ctc", "transducer"):
        _fbank_model(repo / f"{prefix}-features", f"{prefix}-features", manifest["features"])
    if family == "ctc":
        log_probs = _io(io["ctc"][1], ["log_probs"])[0]
        _ctc_greedy_model(repo / f"{prefix}-greedy", f"{prefix}-greedy", manifest, log_probs.dims[-1])
        greedy_out = [TensorSpec("tokens", "TYPE_INT64", (-1, -1)), TensorSpec("text", "TYPE_STRING", (-1, 1))]
        _write_ensemble(repo, _ensemble(prefix, [AUDIO], greedy_out, [
            (f"{prefix}-features", {"audio": "audio"}, {"features": "features", "feature_lens": "feature_lens"}),
            (f"{prefix}-ctc", {"features": "features", "feature_lens": "feature_lens"},
             {"log_probs": "log_probs", "out_lens": "out_lens"}),
            (f"{prefix}-greedy", {"log_probs": "log_probs", "out_lens": "out_lens"}, {"tokens": "tokens", "text": "text"}),
        ]))
    elif family == "whisper":
        _whisper_features_model(repo / f"{prefix}-features", f"{prefix}-features", manifest["dims"])
        cross = io["cross_kv"][1]
        _write_ensemble(repo, _ensemble(prefix, [AUDIO], io["encoder"][1] + cross, [
            (f"{prefix}-features", {"audio": "audio"}, {"mel": "mel"}),
            (f"{prefix}-encoder", {"mel": "mel"}, {"features": "features"}),
            (f"{prefix}-cross_kv", {"features": "features"}, {s.name: s.name for s in cross}),
        ]))
    elif family == "tts":
        inputs, outputs = io["acoustic"]
        wave = io["vocoder"][1]
        _write_ensemble(repo, _ensemble(prefix, inputs, _io(outputs, ["mel_lens"]) + wave, [
            (f"{prefix}-acoustic", {s.name: s.name for s in inputs}, {"mels": "mels", "mel_lens": "mel_lens"}),
            (f"{prefix}-vocoder", {"mels": "mels"}, {"wave": "wave"}),
        ]))
    return repo
