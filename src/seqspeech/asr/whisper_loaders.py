"""Load Whisper weights from the three layouts found in the wild into `seqspeech.asr.whisper.Whisper`.

* OpenAI `.pt` checkpoints (`{"dims", "model_state_dict"}`), read with `weights_only=True`, and our own
  `.safetensors` files (`save_whisper`) carrying the dims in the safetensors metadata.
* Hugging Face `transformers` Whisper directories: config.json + model.safetensors (single or sharded) or
  pytorch_model.bin; names are mapped to openai-whisper's.
* CTranslate2 Whisper directories: `model.bin` is parsed here (layout of `ctranslate2/specs/model_spec.py`,
  `ModelSpec._serialize`), the fused projections are split and int8/int16 weights dequantized.

Every loader returns a `LoadedWhisper` whose model is float32 in eval mode; `load_whisper` picks the loader from
what the path is. Anything unreadable raises `ModelLoadError` naming the file and the problem.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from seqspeech.asr.whisper import Whisper, WhisperDims
from seqspeech.errors import ConfigError, ModelLoadError
from seqspeech.fileio import write_atomic

SourceFormat = Literal["openai", "hf", "ct2"]

# Keys of our safetensors metadata.
DIMS_METADATA_KEY = "seqspeech.whisper.dims"
ALIGNMENT_HEADS_METADATA_KEY = "seqspeech.whisper.alignment_heads"


@dataclass
class LoadedWhisper:
    """A loaded model plus what its source said about decoding (None where the source has no such field)."""

    model: Whisper
    dims: WhisperDims
    source_format: SourceFormat
    path: Path
    tokenizer_json: Path | None = None
    alignment_heads: list[tuple[int, int]] | None = None
    suppress_ids: list[int] | None = None
    suppress_ids_begin: list[int] | None = None
    lang_ids: list[int] | None = None


class _SkipInit(TorchFunctionMode):
    """Makes the in-place `torch.nn.init` functions no-ops while modules are built for weights from a file.

    Under `torch.device("meta")` some of them (normal_, for nn.Embedding) run Python reference kernels whose
    first use imports torch._dynamo: about 1 s and 140 MB of resident memory spent initialising nothing.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init" and func.__name__.endswith("_"):
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def _empty_whisper(dims: WhisperDims) -> Whisper:
    """A Whisper of `dims` on the meta device: shapes only, no memory, no initialisation."""
    with torch.device("meta"), _SkipInit():
        return Whisper(dims)


def _build_model(dims: WhisperDims, state_dict: dict[str, Tensor], path: Path) -> Whisper:
    """A float32 eval-mode Whisper holding `state_dict` (openai names); a clear error for missing/extra keys.

    Consumes `state_dict`: it is emptied as its tensors move into the model, so a half-precision source is
    freed tensor by tensor as it is converted. float32 contiguous tensors become the parameters as they are.
    """
    model = _empty_whisper(dims)  # skip random initialisation: every weight comes from the state dict
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing or unexpected:
        raise ModelLoadError(
            f"{path}: weights do not fit a Whisper model with {dims}: "
            f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    tensors = {}
    for name in list(state_dict):
        tensors[name] = state_dict.pop(name).detach().to(torch.float32).contiguous()
    try:
        model.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as error:
        raise ModelLoadError(f"{path}: weights do not fit a Whisper model with {dims}: {error}") from error
    model.set_alignment_heads(None)  # the non-persistent default mask, rebuilt off the meta device
    return model.eval()


def _dims_from_dict(data: object, path: Path) -> WhisperDims:
    try:
        return WhisperDims.from_dict(data)  # type: ignore[arg-type]
    except ConfigError as error:
        raise ModelLoadError(f"{path}: bad Whisper dimensions: {error}") from error


def _finish(
    model: Whisper, alignment_heads: list[tuple[int, int]] | None, path: Path
) -> list[tuple[int, int]] | None:
    """Install the source's alignment heads on the model; returns them as a list of pairs."""
    if alignment_heads is None:
        return None
    try:
        pairs = [(int(layer), int(head)) for layer, head in alignment_heads]
        model.set_alignment_heads(pairs)
    except (ConfigError, TypeError, ValueError) as error:
        raise ModelLoadError(f"{path}: bad alignment_heads {alignment_heads!r}: {error}") from error
    return pairs


# --------------------------------------------------------------------------------------------------------------
# OpenAI .pt and our safetensors


def load_openai_checkpoint(path: str | os.PathLike) -> LoadedWhisper:
    """An OpenAI `.pt` checkpoint or a `.safetensors` file written by `save_whisper`."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        return _load_own_safetensors(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated/garbage/pickled-object files
        raise ModelLoadError(
            f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(checkpoint, dict) or "dims" not in checkpoint or "model_state_dict" not in checkpoint:
        found = sorted(checkpoint)[:10] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ModelLoadError(
            f"{path}: not an OpenAI Whisper checkpoint (needs 'dims' and 'model_state_dict', found {found})"
        )
    dims = _dims_from_dict(checkpoint["dims"], path)
    model = _build_model(dims, checkpoint["model_state_dict"], path)
    return LoadedWhisper(model=model, dims=dims, source_format="openai", path=path)


def _load_own_safetensors(path: Path) -> LoadedWhisper:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state_dict = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelLoadError(f"{path}: not a readable safetensors file ({error})") from error
    if DIMS_METADATA_KEY not in metadata:
        raise ModelLoadError(
            f"{path}: safetensors file has no '{DIMS_METADATA_KEY}' metadata; "
            "write it with seqspeech.asr.whisper_loaders.save_whisper"
        )
    try:
        dims_dict = json.loads(metadata[DIMS_METADATA_KEY])
        heads = json.loads(metadata.get(ALIGNMENT_HEADS_METADATA_KEY, "null"))
    except json.JSONDecodeError as error:
        raise ModelLoadError(f"{path}: corrupt seqspeech metadata: {error}") from error
    dims = _dims_from_dict(dims_dict, path)
    model = _build_model(dims, state_dict, path)
    pairs = _finish(model, heads, path)
    return LoadedWhisper(model=model, dims=dims, source_format="openai", path=path, alignment_heads=pairs)


def save_whisper(model: Whisper, path: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
    """Write `model` as one safetensors file (openai names; dims and alignment heads in the metadata).

    dtype: store the weights in this dtype (e.g. torch.float16 for shipping); default: as they are. The write is
    atomic: a temporary file in the same folder, fsync, rename. int8-quantized copies cannot be saved.
    """
    from safetensors.torch import save

    path = Path(path)
    state_dict = model.state_dict()
    expected = set(_empty_whisper(model.dims).state_dict())
    if set(state_dict) != expected:
        raise ValueError("save_whisper needs a plain Whisper model (int8-quantized copies cannot be saved)")
    tensors: dict[str, Tensor] = {}
    for name, value in state_dict.items():
        value = value.detach().to("cpu", dtype=dtype or value.dtype).contiguous()
        if value.untyped_storage().nbytes() != value.numel() * value.element_size():
            value = value.clone()  # safetensors refuses views into larger or shared storage
        tensors[name] = value
    pairs = [tuple(p) for p in model.alignment_heads.nonzero().tolist()]
    metadata = {
        "format": "pt",
        DIMS_METADATA_KEY: json.dumps(model.dims.to_dict()),
        ALIGNMENT_HEADS_METADATA_KEY: json.dumps(pairs),
    }
    write_atomic(path, save(tensors, metadata=metadata))
    return path


# --------------------------------------------------------------------------------------------------------------
# Hugging Face transformers directories

_HF_TOP_NAMES = {
    "encoder.conv1.weight": "encoder.conv1.weight",
    "encoder.conv1.bias": "encoder.conv1.bias",
    "encoder.conv2.weight": "encoder.conv2.weight",
    "encoder.conv2.bias": "encoder.conv2.bias",
    "encoder.embed_positions.weight": "encoder.positional_embedding",
    "encoder.layer_norm.weight": "encoder.ln_post.weight",
    "encoder.layer_norm.bias": "encoder.ln_post.bias",
    "decoder.embed_tokens.weight": "decoder.token_embedding.weight",
    "decoder.embed_positions.weight": "decoder.positional_embedding",
    "decoder.layer_norm.weight": "decoder.ln.weight",
    "decoder.layer_norm.bias": "decoder.ln.bias",
}
_HF_LAYER_NAMES = {
    "self_attn.q_proj": "attn.query",
    "self_attn.k_proj": "attn.key",
    "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out",
    "self_attn_layer_norm": "attn_ln",
    "encoder_attn.q_proj": "cross_attn.query",
    "encoder_attn.k_proj": "cross_attn.key",
    "encoder_attn.v_proj": "cross_attn.value",
    "encoder_attn.out_proj": "cross_attn.out",
    "encoder_attn_layer_norm": "cross_attn_ln",
    "fc1": "mlp.0",
    "fc2": "mlp.2",
    "final_layer_norm": "mlp_ln",
}
_HF_LAYER_RE = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_HF_CONFIG_KEYS = {
    "n_mels": "num_mel_bins",
    "n_audio_ctx": "max_source_positions",
    "n_audio_state": "d_model",
    "n_audio_head": "encoder_attention_heads",
    "n_audio_layer": "encoder_layers",
    "n_vocab": "vocab_size",
    "n_text_ctx": "max_target_positions",
    "n_text_state": "d_model",
    "n_text_head": "decoder_attention_heads",
    "n_text_layer": "decoder_layers",
}


def hf_to_openai_name(name: str) -> str | None:
    """The openai-whisper name of a transformers Whisper weight; None for names that carry no weight of ours.

    `model.` prefixes (WhisperForConditionalGeneration) are optional. Key-projection biases (not in openai's
    layout) map to None: a key bias shifts every score of a query equally, so softmax ignores it.
    """
    name = name.removeprefix("model.")
    if name in _HF_TOP_NAMES:
        return _HF_TOP_NAMES[name]
    match = _HF_LAYER_RE.match(name)
    if match is None or match.group(3) not in _HF_LAYER_NAMES:
        raise KeyError(name)
    side, index, layer_name, kind = match.groups()
    if layer_name.endswith("k_proj") and kind == "bias":
        return None
    return f"{side}.blocks.{index}.{_HF_LAYER_NAMES[layer_name]}.{kind}"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{path}: not a readable JSON file ({error})") from error
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_weight_file(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise ModelLoadError(f"{path}: weight file is missing")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # safetensors/torch raise several types for corrupt files
        raise ModelLoadError(
            f"{path}: not a readable weight file ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(weights, dict) or not all(isinstance(v, Tensor) for v in weights.values()):
        raise ModelLoadError(f"{path}: expected a dict of tensors")
    return weights


def _hf_weight_files(path: Path) -> list[Path]:
    for single, index in (
        ("model.safetensors", "model.safetensors.index.json"),
        ("pytorch_model.bin", "pytorch_model.bin.index.json"),
    ):
        if (path / single).is_file():
            return [path / single]
        if (path / index).is_file():
            weight_map = _read_json(path / index).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise ModelLoadError(f"{path / index}: no 'weight_map'")
            return [path / name for name in sorted(set(weight_map.values()))]
    raise ModelLoadError(
        f"{path}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin "
        f"(found {_listing(path)})"
    )


def load_hf_dir(path: str | os.PathLike) -> LoadedWhisper:
    """A transformers `WhisperForConditionalGeneration` (or `WhisperModel`) directory."""
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"{path}: not a directory")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelLoadError(f"{path}: no config.json (found {_listing(path)})")
    config = _read_json(config_path)
    if config.get("model_type", "whisper") != "whisper":
        raise ModelLoadError(f"{config_path}: model_type is {config['model_type']!r}, not 'whisper'")
    if config.get("scale_embedding", False):
        raise ModelLoadError(f"{config_path}: scale_embedding=true is not Whisper's layout")
    missing = sorted({key for key in _HF_CONFIG_KEYS.values() if key not in config})
    if missing:
        raise ModelLoadError(f"{config_path}: missing Whisper config keys {missing}")
    dims = _dims_from_dict({ours: config[theirs] for ours, theirs in _HF_CONFIG_KEYS.items()}, config_path)

    state_dict: dict[str, Tensor] = {}
    output_projection: Tensor | None = None
    for weight_file in _hf_weight_files(path):
        for name, value in _read_weight_file(weight_file).items():
            if name.removeprefix("model.") == "proj_out.weight":
                output_projection = value
                continue
            try:
                ours = hf_to_openai_name(name)
            except KeyError:
                raise ModelLoadError(
                    f"{weight_file}: unexpected weight {name!r} for a Whisper model"
                ) from None
            if ours is not None:
                state_dict[ours] = value
    embedding = state_dict.get("decoder.token_embedding.weight")
    if (
        output_projection is not None
        and embedding is not None
        and not torch.equal(output_projection.to(embedding.dtype), embedding)
    ):
        raise ModelLoadError(
            f"{path}: proj_out is not tied to embed_tokens (untied outputs are not supported)"
        )
    del embedding, output_projection  # let _build_model free each source tensor as it converts it
    model = _build_model(dims, state_dict, path)

    heads = suppress = suppress_begin = lang_ids = None
    generation_path = path / "generation_config.json"
    if generation_path.is_file():
        generation = _read_json(generation_path)
        heads = generation.get("alignment_heads")
        suppress = generation.get("suppress_tokens")
        suppress_begin = generation.get("begin_suppress_tokens")
        lang_to_id = generation.get("lang_to_id")
        lang_ids = sorted(lang_to_id.values()) if isinstance(lang_to_id, dict) else None
    else:
        suppress = config.get("suppress_tokens")
        suppress_begin = config.get("begin_suppress_tokens")
    return LoadedWhisper(
        model=model,
        dims=dims,
        source_format="hf",
        path=path,
        tokenizer_json=_optional_file(path / "tokenizer.json"),
        alignment_heads=_finish(model, heads, generation_path),
        suppress_ids=suppress,
        suppress_ids_begin=suppress_begin,
        lang_ids=lang_ids,
    )


# --------------------------------------------------------------------------------------------------------------
# CTranslate2 directories

CT2_SUPPORTED_BINARY_VERSIONS = range(4, 7)  # 4: typed variables; 6: ctranslate2 4.x (CURRENT_BINARY_VERSION)
# Type ids of ctranslate2's DataType enum (include/ctranslate2/types.h), as written by model_spec.py.
_CT2_DTYPES: dict[int, torch.dtype] = {
    0: torch.float32,
    1: torch.int8,
    2: torch.int16,
    3: torch.int32,
    4: torch.float16,
    5: torch.bfloat16,
}


@dataclass
class CT2Model:
    """The parsed content of a CTranslate2 `model.bin`: spec name, revision and variables (aliases resolved).

    The variables are zero-copy views of a private (copy-on-write) memory map of the file: reading costs no
    copy, writes never reach the file, and the map closes with the last view. `drop_pages(name)` hands a
    variable's resident pages back to the kernel once it has been converted (a later read faults them in again
    from the file; writes made to it are lost), so a loader going variable by variable never holds the file.
    """

    spec_name: str
    revision: int
    binary_version: int
    variables: dict[str, Tensor]
    byte_ranges: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)  # name: (offset, size)
    mapping: mmap.mmap | None = field(default=None, repr=False)

    def drop_pages(self, name: str) -> None:
        """Release the resident memory-map pages of variable `name` (no-op without madvise, e.g. Windows)."""
        if self.mapping is None or name not in self.byte_ranges or not hasattr(mmap, "MADV_DONTNEED"):
            return
        offset, size = self.byte_ranges[name]
        if size:
            start = offset - offset % mmap.PAGESIZE  # madvise wants a page-aligned start
            self.mapping.madvise(mmap.MADV_DONTNEED, start, offset + size - start)


class _Reader:
    """Sequential little-endian reads from a buffer that turn a short file into a ModelLoadError naming it."""

    def __init__(self, buffer: mmap.mmap, path: Path) -> None:
        self.buffer = buffer
        self.size = len(buffer)
        self.offset = 0
        self.path = path

    def skip(self, n: int) -> int:
        """Step over n bytes; returns the offset where they start."""
        if self.offset + n > self.size:
            raise ModelLoadError(
                f"{self.path}: truncated or corrupt (wanted {n} bytes, got {self.size - self.offset})"
            )
        start = self.offset
        self.offset += n
        return start

    def unpack(self, fmt: str) -> int:
        fmt = "<" + fmt
        return struct.unpack_from(fmt, self.buffer, self.skip(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        size = self.unpack("H")  # includes the terminating NUL
        start = self.skip(size)
        raw = self.buffer[start : start + size]
        if size == 0 or raw[-1] != 0:
            raise ModelLoadError(f"{self.path}: corrupt string at byte {start}")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as error:
            raise ModelLoadError(f"{self.path}: corrupt string ({error})") from error


def read_ct2_model_bin(path: str | os.PathLike) -> CT2Model:
    """Parse a CTranslate2 `model.bin` (see `ModelSpec._serialize`) without copying weights (see `CT2Model`).

    Layout: u32 binary version, string spec name, u32 spec revision, u32 variable count, then per variable:
    string name, u8 rank, rank x u32 dims, u8 dtype id, u32 byte count, raw bytes; then u32 alias count and
    (alias, target) string pairs. Strings are u16 length (NUL included) + UTF-8 + NUL.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                raise ModelLoadError(f"{path}: truncated or corrupt (an empty file)")
            mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    except OSError as error:
        raise ModelLoadError(f"{path}: cannot read ({error})") from error
    reader = _Reader(mapping, path)
    version = reader.unpack("I")
    if version not in CT2_SUPPORTED_BINARY_VERSIONS:
        raise ModelLoadError(
            f"{path}: CTranslate2 binary version {version} is not supported "
            f"({CT2_SUPPORTED_BINARY_VERSIONS.start}-{CT2_SUPPORTED_BINARY_VERSIONS.stop - 1})"
        )
    spec_name = reader.string()
    revision = reader.unpack("I")
    variables: dict[str, Tensor] = {}
    byte_ranges: dict[str, tuple[int, int]] = {}
    for _ in range(reader.unpack("I")):
        name = reader.string()
        shape = [reader.unpack("I") for _ in range(reader.unpack("B"))]
        type_id = reader.unpack("B")
        n_bytes = reader.unpack("I")
        if type_id not in _CT2_DTYPES:
            raise ModelLoadError(f"{path}: variable {name!r} has unknown dtype id {type_id}")
        dtype = _CT2_DTYPES[type_id]
        if n_bytes != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise ModelLoadError(f"{path}: variable {name!r} has {n_bytes} bytes for shape {shape} {dtype}")
        offset = reader.skip(n_bytes)
        if n_bytes:
            flat = torch.frombuffer(mapping, dtype=dtype, count=n_bytes // dtype.itemsize, offset=offset)
        else:
            flat = torch.empty(0, dtype=dtype)
        variables[name] = flat.reshape(shape)
        byte_ranges[name] = (offset, n_bytes)
    for _ in range(reader.unpack("I")):
        alias, target = reader.string(), reader.string()
        if target not in variables:
            raise ModelLoadError(f"{path}: alias {alias!r} points to unknown variable {target!r}")
        variables[alias] = variables[target]
        byte_ranges[alias] = byte_ranges[target]
    if reader.offset != reader.size:
        raise ModelLoadError(f"{path}: unexpected bytes after the last alias (corrupt file?)")
    return CT2Model(spec_name, revision, version, variables, byte_ranges, mapping)


def _ct2_float(variables: dict[str, Tensor], name: str, path: Path, chunks: int = 1) -> list[Tensor]:
    """Variable `name` as new float32 tensors (never views of the source), split into `chunks` equal blocks of
    rows (fused projections), dequantizing int8 (per-row scale) and int16 (one scale) weights."""
    if name not in variables:
        raise ModelLoadError(f"{path}: missing variable {name!r}")
    value = variables[name]
    if value.is_floating_point():
        return [part.to(torch.float32, copy=True) for part in value.chunk(chunks)]
    if f"{name}_zero" in variables:
        raise ModelLoadError(f"{path}: {name!r} uses zero-point (AWQ) quantization, which is not supported")
    scale_name = f"{name}_scale"
    if value.dtype not in (torch.int8, torch.int16) or scale_name not in variables:
        raise ModelLoadError(f"{path}: {name!r} has dtype {value.dtype} and no usable {scale_name!r}")
    scale = variables[scale_name].to(torch.float32)
    if scale.ndim == 0:  # int16: one scale for the tensor
        return [part.to(torch.float32).div_(scale) for part in value.chunk(chunks)]
    if scale.shape != value.shape[:1]:
        raise ModelLoadError(
            f"{path}: {scale_name!r} shape {tuple(scale.shape)} does not match {tuple(value.shape)}"
        )
    # int8: value = round(weight * scale[row]) for each output row (conv weights flattened to 2-D first).
    scale = scale.view(-1, *([1] * (value.ndim - 1)))
    return [part.to(torch.float32).div_(s) for part, s in zip(value.chunk(chunks), scale.chunk(chunks))]


def _ct2_scalar(variables: dict[str, Tensor], name: str, path: Path) -> int:
    if name not in variables or variables[name].numel() != 1:
        raise ModelLoadError(f"{path}: missing scalar variable {name!r}")
    return int(variables[name].item())


def _ct2_layer_count(variables: dict[str, Tensor], side: str) -> int:
    pattern = re.compile(rf"^{side}/layer_(\d+)/")
    indices = {int(m.group(1)) for name in variables if (m := pattern.match(name))}
    return max(indices) + 1 if indices else 0


def ct2_to_openai_state_dict(
    variables: dict[str, Tensor], path: Path, release: Callable[[str], None] | None = None
) -> tuple[WhisperDims, dict[str, Tensor]]:
    """Dims and an openai-named float32 state dict from the variables of a CTranslate2 WhisperSpec model.

    Every tensor of the state dict is new memory, converted once. release: called with each variable's name
    (and its scale's) right after its conversion, e.g. `CT2Model.drop_pages`, to free the source as it goes.
    """

    def get(name: str, chunks: int = 1) -> list[Tensor]:
        parts = _ct2_float(variables, name, path, chunks)
        if release is not None:
            release(name)
            if f"{name}_scale" in variables:
                release(f"{name}_scale")
        return parts

    def shape(name: str) -> torch.Size:
        if name not in variables:
            raise ModelLoadError(f"{path}: missing variable {name!r}")
        return variables[name].shape

    def linear(ours: str, theirs: str) -> None:
        (state[f"{ours}.weight"],) = get(f"{theirs}/weight")
        if f"{theirs}/bias" in variables:
            (state[f"{ours}.bias"],) = get(f"{theirs}/bias")

    def layer_norm(ours: str, theirs: str) -> None:
        (state[f"{ours}.weight"],) = get(f"{theirs}/gamma")
        (state[f"{ours}.bias"],) = get(f"{theirs}/beta")

    def split_linear(ours: list[str], theirs: str) -> None:
        """Un-fuse a linear layer whose output rows are the concatenation of len(ours) projections."""
        weights = get(f"{theirs}/weight", len(ours))
        biases = get(f"{theirs}/bias", len(ours)) if f"{theirs}/bias" in variables else [None] * len(ours)
        for name, weight, bias in zip(ours, weights, biases):
            state[f"{name}.weight"] = weight
            if bias is not None and not name.endswith(".key"):  # key bias: softmax-invariant, not in openai
                state[f"{name}.bias"] = bias

    state: dict[str, Tensor] = {}
    # The embedding first: the biggest variable, converted while little else is resident.
    (embedding,) = get("decoder/embeddings/weight")
    conv1 = shape("encoder/conv1/weight")
    n_audio_layer = _ct2_layer_count(variables, "encoder")
    n_text_layer = _ct2_layer_count(variables, "decoder")
    dims = _dims_from_dict(
        {
            "n_mels": conv1[1],
            "n_audio_ctx": shape("encoder/position_encodings/encodings")[0],
            "n_audio_state": conv1[0],
            "n_audio_head": _ct2_scalar(variables, "encoder/num_heads", path),
            "n_audio_layer": n_audio_layer,
            "n_vocab": embedding.shape[0],
            "n_text_ctx": shape("decoder/position_encodings/encodings")[0],
            "n_text_state": embedding.shape[1],
            "n_text_head": _ct2_scalar(variables, "decoder/num_heads", path),
            "n_text_layer": n_text_layer,
        },
        path,
    )
    if _ct2_scalar(variables, "decoder/scale_embeddings", path):
        raise ModelLoadError(f"{path}: decoder/scale_embeddings is set, which is not Whisper's layout")

    for conv in ("conv1", "conv2"):
        linear(f"encoder.{conv}", f"encoder/{conv}")
    (state["encoder.positional_embedding"],) = get("encoder/position_encodings/encodings")
    def self_attention_and_mlp(ours: str, theirs: str) -> None:
        """The parts every encoder and decoder block shares: fused-QKV self-attention and the MLP."""
        split_linear(
            [f"{ours}.attn.query", f"{ours}.attn.key", f"{ours}.attn.value"],
            f"{theirs}/self_attention/linear_0",
        )
        linear(f"{ours}.attn.out", f"{theirs}/self_attention/linear_1")
        layer_norm(f"{ours}.attn_ln", f"{theirs}/self_attention/layer_norm")
        linear(f"{ours}.mlp.0", f"{theirs}/ffn/linear_0")
        linear(f"{ours}.mlp.2", f"{theirs}/ffn/linear_1")
        layer_norm(f"{ours}.mlp_ln", f"{theirs}/ffn/layer_norm")

    for i in range(n_audio_layer):
        self_attention_and_mlp(f"encoder.blocks.{i}", f"encoder/layer_{i}")
    layer_norm("encoder.ln_post", "encoder/layer_norm")

    state["decoder.token_embedding.weight"] = embedding
    (state["decoder.positional_embedding"],) = get("decoder/position_encodings/encodings")
    for i in range(n_text_layer):
        ours, theirs = f"decoder.blocks.{i}", f"decoder/layer_{i}"
        self_attention_and_mlp(ours, theirs)
        linear(f"{ours}.cross_attn.query", f"{theirs}/attention/linear_0")
        split_linear([f"{ours}.cross_attn.key", f"{ours}.cross_attn.value"], f"{theirs}/attention/linear_1")
        linear(f"{ours}.cross_attn.out", f"{theirs}/attention/linear_2")
        layer_norm(f"{ours}.cross_attn_ln", f"{theirs}/attention/layer_norm")
    layer_norm("decoder.ln", "decoder/layer_norm")

    # The output projection is normally an alias of the embedding; a stored copy must equal it.
    stored_projection = variables.get("decoder/projection/weight")
    if stored_projection is not None and stored_projection is not variables["decoder/embeddings/weight"]:
        (projection,) = get("decoder/projection/weight")
        if projection.shape != embedding.shape or not torch.allclose(
            projection, embedding, atol=1e-6, rtol=1e-3
        ):
            raise ModelLoadError(
                f"{path}: decoder/projection differs from the embeddings (untied outputs are not supported)"
            )
    if "decoder/projection/bias" in variables and get("decoder/projection/bias")[0].abs().max() > 0:
        raise ModelLoadError(f"{path}: decoder/projection has a non-zero bias, which is not Whisper's layout")
    return dims, state


def load_ct2_dir(path: str | os.PathLike) -> LoadedWhisper:
    """A CTranslate2 Whisper directory (model.bin, config.json, tokenizer.json), any stored weight dtype.

    model.bin is memory-mapped and converted variable by variable straight into the float32 parameters, each
    variable's pages dropped once converted: the peak is about the float32 model, never model + file.
    """
    path = Path(path)
    model_bin = path / "model.bin"
    if not model_bin.is_file():
        raise ModelLoadError(f"{path}: no model.bin (found {_listing(path)})")
    ct2 = read_ct2_model_bin(model_bin)
    if ct2.spec_name != "WhisperSpec":
        raise ModelLoadError(f"{model_bin}: a CTranslate2 {ct2.spec_name!r} model, not a WhisperSpec model")
    dims, state_dict = ct2_to_openai_state_dict(ct2.variables, model_bin, release=ct2.drop_pages)
    del ct2  # no tensor of the state dict is a view of the map, so it closes here
    model = _build_model(dims, state_dict, model_bin)
    config_path = path / "config.json"
    config = _read_json(config_path) if config_path.is_file() else {}
    return LoadedWhisper(
        model=model,
        dims=dims,
        source_format="ct2",
        path=path,
        tokenizer_json=_optional_file(path / "tokenizer.json"),
        alignment_heads=_finish(model, config.get("alignment_heads"), config_path),
        suppress_ids=config.get("suppress_ids"),
        suppress_ids_begin=config.get("suppress_ids_begin"),
        lang_ids=config.get("lang_ids"),
    )


# --------------------------------------------------------------------------------------------------------------
# Dispatch


def _optional_file(path: Path) -> Path | None:
    return path if path.is_file() else None


def _listing(path: Path, limit: int = 20) -> str:
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    except OSError:
        return "nothing readable"
    if not names:
        return "an empty directory"
    return ", ".join(names[:limit]) + (f", ... ({len(names)} entries)" if len(names) > limit else "")


_FILE_LOADERS: dict[str, Callable[[str | os.PathLike], LoadedWhisper]] = {
    ".pt": load_openai_checkpoint,
    ".pth": load_openai_checkpoint,
    ".safetensors": load_openai_checkpoint,
}


def _is_hf_dir(path: Path) -> bool:
    weights: Iterable[str] = (
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
    )
    return (path / "config.json").is_file() and any((path / name).is_file() for name in weights)


def load_whisper(path: str | os.PathLike) -> LoadedWhisper:
    """Load a Whisper model from an OpenAI .pt, our .safetensors, a CTranslate2 directory (model.bin) or a
    Hugging Face directory (config.json + model.safetensors / pytorch_model.bin)."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file or directory")
    if path.is_file():
        loader = _FILE_LOADERS.get(path.suffix.lower())
        if loader is None:
            raise ModelLoadError(
                f"{path}: unknown Whisper checkpoint type {path.suffix!r} (expected {sorted(_FILE_LOADERS)} "
                "or a CTranslate2 / Hugging Face directory)"
            )
        return loader(path)
    if (path / "model.bin").is_file():
        return load_ct2_dir(path)
    if _is_hf_dir(path):
        return load_hf_dir(path)
    raise ModelLoadError(
        f"{path}: not a Whisper model directory: expected model.bin (CTranslate2) or config.json with "
        f"model.safetensors / pytorch_model.bin (Hugging Face); found {_listing(path)}"
    )
