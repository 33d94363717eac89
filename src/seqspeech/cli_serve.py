"""``seqspeech serve``: the OpenAI-compatible speech server (see :mod:`seqspeech.serving.app`)."""

from __future__ import annotations

import argparse
import os

from .errors import ConfigError

API_KEY_ENV = "SEQSPEECH_API_KEY"

EPILOG = """\
examples:
  seqspeech serve                                   # whisper-tiny.en and the slt voice on 127.0.0.1:8000
  seqspeech serve --models whisper-tiny.en,rnnt-synth-en,slt --api-key secret
  curl -F file=@talk.wav http://127.0.0.1:8000/v1/audio/transcriptions
  python -c "from openai import OpenAI; c = OpenAI(base_url='http://127.0.0.1:8000/v1', api_key='x'); \\
             print(c.audio.transcriptions.create(model='whisper-1', file=open('talk.wav', 'rb')).text)"

OpenAI's names work too: model whisper-1 (or gpt-4o-transcribe) is the first recogniser served, tts-1 and the voices
alloy, echo, ... are the first voice. The web page at http://127.0.0.1:8000/ transcribes uploads and the
microphone and speaks text.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the top-level subcommands ``sub``."""
    from .serving.config import ServerConfig

    d = ServerConfig()
    p = sub.add_parser("serve", help="an OpenAI-compatible speech server (transcriptions, speech, WebSocket streaming)",
                       description="Serve our models over HTTP and WebSockets with OpenAI's audio API.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=d.host, help=f"address to bind (default {d.host}: this machine only)")
    p.add_argument("--port", type=int, default=d.port, help=f"default {d.port}")
    p.add_argument("--models", default=",".join(d.models),
                   help=f"comma-separated zoo names or paths; the first recogniser and the first voice are the "
                        f"defaults (default {','.join(d.models)})")
    p.add_argument("--api-key", default=None,
                   help=f"require 'Authorization: Bearer KEY' on every route but /health and the web page "
                        f"(default: ${API_KEY_ENV} when set, else no key)")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, help=f"default {d.max_upload_mb:g}")
    p.add_argument("--max-queue", type=int, default=d.max_queue,
                   help=f"requests per model queued or running before 503 (default {d.max_queue})")
    p.add_argument("--batch-window-ms", type=float, default=d.batch_window_ms,
                   help=f"how long a request waits for others to share its batch (default {d.batch_window_ms:g})")
    p.add_argument("--max-batch", type=int, default=d.max_batch,
                   help=f"requests per batch; 1 turns batching off (default {d.max_batch})")
    p.add_argument("--request-timeout", type=float, default=d.request_timeout_s,
                   help=f"seconds a request may wait and run (default {d.request_timeout_s:g})")
    p.add_argument("--workers-threads", type=int, default=None,
                   help="torch threads the models compute with (default: torch's, one per core)")
    p.add_argument("--backend", default=d.backend, choices=["torch", "onnx"],
                   help="torch (default) or onnx: --models are folders written by `seqspeech export`")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .serving.app import run_server
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigError(f"seqspeech serve needs the server extras ({e.name} is missing): "
                          "pip install 'seqspeech[serve]'") from None
    from .serving.config import ServerConfig

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    if not models:
        raise ConfigError("--models is empty: name at least one model")
    config = ServerConfig(host=args.host, port=args.port, models=models,
                          api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
                          max_upload_mb=args.max_upload_mb, max_queue=args.max_queue,
                          batch_window_ms=args.batch_window_ms, max_batch=args.max_batch,
                          request_timeout_s=args.request_timeout, threads=args.workers_threads,
                          backend=args.backend, device=args.device)
    run_server(config)
    return 0
