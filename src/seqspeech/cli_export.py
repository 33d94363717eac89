"""`seqspeech export`: a model to ONNX graphs (optionally int8) or to a Triton model repository.

    seqspeech export ctc-conformer-synth-en --format onnx -o ctc-onnx/          # graphs + manifest.json
    seqspeech export whisper-tiny.en --format onnx --int8 -o whisper-int8/
    seqspeech export slt --format triton -o triton-repo/                         # config.pbtxt per model + ensemble

The output folder is checked before the model loads (it may exist; files of the same names are replaced). With
``--format triton`` the ONNX export is made in a temporary folder and laid out as the repository in ``-o``. Prints
one JSON line describing what was written.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from .fileio import check_output_dir

__all__ = ["add_parser"]

FORMATS = ("onnx", "triton")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET

    p = sub.add_parser(
        "export", help="export a model to ONNX (int8 optional) or a Triton model repository",
        description="Export a recogniser (Whisper, CTC, transducer) or a FastSpeech 2 voice to ONNX graphs built from "
                    "its own inference code, with a manifest that `seqspeech.export.load_onnx_model` runs without "
                    "PyTorch weights; or to a Triton Inference Server model repository.",
    )  # fmt: skip
    p.add_argument("model", help="zoo name (whisper-tiny.en, ctc-conformer-synth-en, rnnt-synth-en, slt) or path")
    p.add_argument("--format", default="onnx", choices=FORMATS, help="onnx (default) or triton")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder to write (made if missing)")
    p.add_argument("--int8", action="store_true",
                   help="int8 weights for the graphs' matrix products (ONNX Runtime dynamic quantisation)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET} (default {DEFAULT_OPSET})")
    p.add_argument("--name", default=None, help="(triton) the ensemble's name and the models' prefix "
                                                "(default: the model's name)")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .export.onnx import check_opset, export_onnx, read_manifest

    check_opset(args.opset)
    if args.name is not None and args.format != "triton":
        raise ConfigError("--name is for --format triton")
    out = check_output_dir(args.output)
    if args.format == "onnx":
        export_onnx(args.model, out, int8=args.int8, opset=args.opset)
        manifest = read_manifest(out)
        summary = {"output": str(out), "format": "onnx", "family": manifest["family"], "int8": manifest["int8"],
                   "files": manifest["files"]}
    else:
        from .export.triton import write_triton_repository

        with tempfile.TemporaryDirectory(prefix="seqspeech-export-") as tmp:
            export_onnx(args.model, tmp, int8=args.int8, opset=args.opset)
            family = read_manifest(tmp)["family"]
            write_triton_repository(tmp, out, name=args.name)
        summary = {"output": str(out), "format": "triton", "family": family, "int8": args.int8,
                   "models": sorted(p.name for p in out.iterdir() if (p / "config.pbtxt").is_file())}
    print(json.dumps(summary))
    return 0
