"""Export to ONNX (int8 optional), run exports with ONNX Runtime, lay them out as a Triton model repository.

    from seqspeech.export import export_onnx, load_onnx_model, write_triton_repository

    export_onnx("ctc-conformer-synth-en", "ctc-onnx/", int8=True)   # graphs + manifest.json
    asr = load_onnx_model("ctc-onnx/")                              # same API as load_model(...)
    print(asr.transcribe("audio.wav").text)
    write_triton_repository("ctc-onnx/", "triton-repo/")            # config.pbtxt per graph + ensemble

Imports are lazy: ``import seqspeech.export`` loads neither torch's exporter nor ONNX Runtime.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_OPSET", "MAX_OPSET", "MIN_OPSET", "export_model", "export_onnx", "load_onnx_model", "read_manifest",
    "write_triton_repository",
]

DEFAULT_OPSET = 17
MIN_OPSET = 14  # scaled_dot_product_attention's ONNX symbolic
MAX_OPSET = 20

_WHERE = {
    "export_model": "onnx", "export_onnx": "onnx", "read_manifest": "onnx", "load_onnx_model": "runtime",
    "write_triton_repository": "triton",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
