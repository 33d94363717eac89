"""Prometheus metrics of one server (its own registry, so several servers in one process stay apart)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 4.0, 7.5, 15.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class Metrics:
    """Requests by route and status, latency histograms, batch sizes, queue depth, real-time factor."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("seqspeech_requests_total", "HTTP requests and WebSocket sessions answered",
                                ["route", "status"], registry=r)
        self.latency = Histogram("seqspeech_request_seconds", "time to the full answer", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.first_byte = Histogram("seqspeech_first_audio_seconds", "request to the first byte of streamed speech",
                                    ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("seqspeech_batch_size", "requests run as one batch", ["model"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram("seqspeech_batch_seconds", "compute time of one batch", ["model"],
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("seqspeech_queue_depth", "requests queued or running", ["model"], registry=r)
        self.rejected = Counter("seqspeech_rejected_total", "requests refused with 503 (queue full)", ["model"],
                                registry=r)
        self.rtf = Histogram("seqspeech_rtf", "compute seconds per second of audio, per request", ["model"],
                             buckets=RTF_BUCKETS, registry=r)
        self.audio_seconds = Counter("seqspeech_audio_seconds_total", "seconds of audio heard (asr) or spoken (tts)",
                                     ["model", "kind"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
