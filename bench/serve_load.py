#!/usr/bin/env python
"""Load on `seqspeech serve`: throughput and latency at concurrency 1/4/16/64, dynamic batching on vs off, speech
time to first byte, the server's overhead over a direct Python call, and a soak at twice capacity.

The server runs as a separate process (`python -m seqspeech.cli serve`, as a user starts it), one model at a time, on
this machine's cores; the load generator is this process (asyncio, the `httpx2` client the openai package uses).

* transcription, per model: closed loop, ``c`` clients each sending one request after another (Harvard sentences
  spoken by espeak-ng voices and flite slt, 2-4 s each) until ``max(2c, --min-requests)`` answers came back; once
  with batching (``--max-batch 16``, 5-ms window) and once without (``--max-batch 1``). Throughput: answered
  requests per second; latency p50/p95/p99; WER of the answers against the texts (a sanity check);
* overhead at concurrency 1: the server's median latency against the same model's ``transcribe(path)`` in this
  process (what `seqspeech transcribe` runs), same decoding options, same clips;
* speech (the slt voice): concurrency 1/4/16/64, batching on and off, time to the first audio byte and to the last, mp3
  (OpenAI's default);
* soak: open-loop arrivals at twice the measured capacity (batched throughput at concurrency 16) for
  ``--soak-seconds`` on the CTC model; the server's resident memory sampled every 5 s, answers counted by status.

    python bench/serve_load.py                         # everything (about 25 minutes on 2 idle cores)
    python bench/serve_load.py --quick                 # fewer requests, 60-s soak
    python bench/serve_load.py --models ctc-conformer-synth-en --skip-soak --skip-speech
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / "cache" / "serve_load"
RESULTS = ROOT / "bench" / "results" / "serve_load.json"
MODELS = ("ctc-conformer-synth-en", "rnnt-synth-en", "whisper-tiny.en")
LEVELS = (1, 4, 16, 64)
SPEECH_LEVELS = (1, 4, 16, 64)
ESPEAK_VOICES = ("en-us", "en", "en-gb-x-rp", "en-us+m3", "en-gb-scotland", "en-us+f2")
SPEECH_TEXT = "Thank you for calling. Your appointment is confirmed for Tuesday at three in the afternoon."
THREADS = 2


def clips(n: int) -> list[dict]:
    from seqspeech.data.synth import HARVARD_SENTENCES, cached_clip

    out = []
    for i in range(n):
        text = HARVARD_SENTENCES[(i * 7) % len(HARVARD_SENTENCES)]
        engine, voice = ("flite", "slt") if i % 2 else ("espeak-ng", ESPEAK_VOICES[(i // 2) % len(ESPEAK_VOICES)])
        path = cached_clip(CACHE / "clips", text, engine=engine, voice=voice)
        out.append({"path": str(path), "text": text, "bytes": path.read_bytes()})
    return out


# ---------------------------------------------------------------- server process
class ServerProcess:
    def __init__(self, models: str, *extra: str) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "seqspeech.cli", "serve", "--models", models, "--port", str(self.port),
             "--workers-threads", str(THREADS), *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{self.port}"
        import httpx2

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx2.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("the server did not start within 180 s")

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------- load
def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    a = np.asarray(values)
    return {f"p{q}": round(float(np.percentile(a, q)), 3) for q in (50, 95, 99)}


async def transcribe_load(url: str, model: str, corpus: list[dict], concurrency: int, total: int) -> dict:
    import httpx2

    latencies, statuses, texts = [], {}, []
    counter = iter(range(total))

    async def client(http: httpx2.AsyncClient) -> None:
        for i in counter:
            clip = corpus[i % len(corpus)]
            t0 = time.perf_counter()
            r = await http.post(url + "/v1/audio/transcriptions", files={"file": ("clip.wav", clip["bytes"])},
                                data={"model": model})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 200:
                latencies.append(time.perf_counter() - t0)
                texts.append((clip["text"], r.json()["text"]))

    limits = httpx2.Limits(max_connections=concurrency + 4)
    async with httpx2.AsyncClient(timeout=600, limits=limits) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        wall = time.perf_counter() - began
    from seqspeech.metrics.wer import wer

    return {"concurrency": concurrency, "requests": total, "statuses": statuses, "wall_s": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 3), **percentiles(latencies),
            "wer": round(wer([t for t, _ in texts], [h for _, h in texts]), 4) if texts else None}


async def speech_load(url: str, concurrency: int, total: int) -> dict:
    import httpx2

    first, last, statuses, sizes = [], [], {}, []
    counter = iter(range(total))

    async def client(http: httpx2.AsyncClient) -> None:
        for _ in counter:
            t0 = time.perf_counter()
            got, t_first = 0, None
            async with http.stream("POST", url + "/v1/audio/speech", json={
                    "model": "tts-1", "voice": "alloy", "input": SPEECH_TEXT, "response_format": "mp3"}) as r:
                async for chunk in r.aiter_raw():
                    if t_first is None and chunk:
                        t_first = time.perf_counter() - t0
                    got += len(chunk)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 200 and t_first is not None:
                first.append(t_first)
                last.append(time.perf_counter() - t0)
                sizes.append(got)

    async with httpx2.AsyncClient(timeout=600, limits=httpx2.Limits(max_connections=concurrency + 4)) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        wall = time.perf_counter() - began
    return {"concurrency": concurrency, "requests": total, "statuses": statuses, "wall_s": round(wall, 2),
            "throughput_rps": round(len(last) / wall, 3),
            "first_byte": percentiles(first), "total": percentiles(last)}


async def soak(server: ServerProcess, model: str, corpus: list[dict], rate: float, seconds: float) -> dict:
    """Open-loop arrivals at ``rate`` per second for ``seconds``; RSS every 5 s."""
    import httpx2

    statuses: dict[int, int] = {}
    memory: list[tuple[float, float]] = []
    tasks = []

    async def one(http: httpx2.AsyncClient, i: int) -> None:
        clip = corpus[i % len(corpus)]
        try:
            r = await http.post(server.url + "/v1/audio/transcriptions", files={"file": ("c.wav", clip["bytes"])},
                                data={"model": model})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        except httpx2.HTTPError as e:
            key = type(e).__name__
            statuses[key] = statuses.get(key, 0) + 1  # type: ignore[index]

    async with httpx2.AsyncClient(timeout=600, limits=httpx2.Limits(max_connections=512)) as http:
        began = time.perf_counter()
        i, next_sample = 0, 0.0
        while (now := time.perf_counter() - began) < seconds:
            if now >= next_sample:
                memory.append((round(now, 1), round(server.rss_mb(), 1)))
                next_sample += 5.0
            tasks.append(asyncio.ensure_future(one(http, i)))
            i += 1
            await asyncio.sleep(1.0 / rate)
        await asyncio.gather(*tasks)
    memory.append((round(time.perf_counter() - began, 1), round(server.rss_mb(), 1)))
    return {"model": model, "rate_rps": round(rate, 3), "seconds": seconds, "requests": i, "statuses": statuses,
            "rss_mb": memory, **memory_summary(memory)}


WARMUP_S = 120.0  # the allocator and the largest batches settle in the first minutes; growth is measured after


def memory_summary(memory: list[tuple[float, float]]) -> dict:
    """The server's memory over a soak: at the start, after the warm-up (mean over the minute after WARMUP_S), at
    the end (mean over the last minute), growth from the warm-up to the end, and the trend after the warm-up."""
    end_t = memory[-1][0]
    warm = [v for t, v in memory if WARMUP_S <= t < WARMUP_S + 60] or [v for _, v in memory[: len(memory) // 2]]
    last = [v for t, v in memory if t >= end_t - 60]
    later = np.array([(t, v) for t, v in memory if t >= WARMUP_S] or memory)
    slope = float(np.polyfit(later[:, 0], later[:, 1], 1)[0] * 60) if len(later) > 2 else float("nan")
    return {"start_mb": memory[0][1], "warm_mb": round(float(np.mean(warm)), 1), "end_mb": round(float(np.mean(last)), 1),
            "peak_mb": max(v for _, v in memory), "memory_growth": round(float(np.mean(last) / np.mean(warm) - 1), 4),
            "trend_mb_per_min": round(slope, 2)}


def direct_latency(model: str, corpus: list[dict]) -> list[float]:
    """``transcribe(path)`` in this process, as `seqspeech transcribe` runs it, with the server's options."""
    import torch

    import seqspeech
    from seqspeech.serving.transcriptions import whisper_defaults

    torch.set_num_threads(THREADS)
    asr = seqspeech.load_model(model)
    options = whisper_defaults() if model.startswith("whisper") else {}
    asr.transcribe(corpus[0]["path"], **options)
    out = []
    for clip in corpus:
        t0 = time.perf_counter()
        asr.transcribe(clip["path"], **options)
        out.append(time.perf_counter() - t0)
    return out


def run_speech(min_requests: int, batching: bool = True) -> list[dict]:
    server = ServerProcess("slt", "--max-queue", "256", *(() if batching else ("--max-batch", "1")))
    try:
        asyncio.run(speech_load(server.url, 1, 2))
        out = []
        for c in SPEECH_LEVELS:
            r = asyncio.run(speech_load(server.url, c, max(2 * c, min_requests // 2)))
            print(f"speech batching {'on' if batching else 'off'} c={c}: {r['throughput_rps']} req/s, first byte "
                  f"{r['first_byte']} total {r['total']} {r['statuses']}", flush=True)
            out.append(r)
        return out
    finally:
        server.stop()


def cli_latency(model: str, corpus: list[dict], n: int = 4) -> list[float]:
    """`seqspeech transcribe CLIP --model MODEL` as a user runs it, one process per clip (start-up and model load
    included): the latency the issue's "server overhead at concurrency 1" compares against."""
    out = []
    for clip in corpus[:n]:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "seqspeech.cli", "transcribe", clip["path"], "--model", model],
                       check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(THREADS)})
        out.append(time.perf_counter() - t0)
    return out


# ---------------------------------------------------------------- report
def update_readme(results: dict) -> None:
    readme = ROOT / "README.md"
    start, end = "<!-- bench:serve_load:start -->", "<!-- bench:serve_load:end -->"
    text = readme.read_text()
    if start not in text:
        return
    rows = ["| model | batching | " + " | ".join(f"c={c} req/s (p50 / p95 s)" for c in results["meta"]["levels"])
            + " | speed-up at c=16 | c=1 p50 vs `seqspeech transcribe` | c=1 p50 vs in-process call |",
            "|---|---|" + "---|" * (len(results["meta"]["levels"]) + 3)]
    for model, r in results["asr"].items():
        for mode in ("on", "off"):
            cells = [f"{x['throughput_rps']:.2f} ({x['p50']:.2f} / {x['p95']:.2f})" for x in r[mode]]
            c1 = r[mode][0]["p50"] if r[mode][0]["concurrency"] == 1 else float("nan")
            extra = [f"{r['speedup_c16']:.2f}×" if mode == "on" else "",
                     f"{c1:.3f} s vs {r['cli_p50_s']:.2f} s" if "cli_p50_s" in r else "",
                     f"{c1:.3f} s vs {r['direct_p50_s']:.3f} s ({c1 / r['direct_p50_s'] - 1:+.0%})"]
            rows.append(f"| {model} | {mode} | " + " | ".join(cells) + " | " + " | ".join(extra) + " |")
    if results.get("speech"):
        rows += ["", "| speech (slt, mp3) | batching | " + " | ".join(f"c={x['concurrency']}" for x in results["speech"])
                 + " | speed-up at c=16 |", "|---|---|" + "---|" * (len(results["speech"]) + 1)]
        modes = [("on", results["speech"])] + ([("off", results["speech_off"])] if results.get("speech_off") else [])
        for mode, levels in modes:
            speedup = ""
            if mode == "on" and results.get("speech_off"):
                on16, off16 = ([x for x in rs if x["concurrency"] == 16] for rs in (levels, results["speech_off"]))
                if on16 and off16:
                    speedup = f"{on16[0]['throughput_rps'] / off16[0]['throughput_rps']:.2f}×"
            rows.append(f"| requests/s | {mode} | " + " | ".join(f"{x['throughput_rps']:.2f}" for x in levels)
                        + f" | {speedup} |")
            rows.append(f"| first byte p50 / p95 s | {mode} | " + " | ".join(
                f"{x['first_byte']['p50']:.3f} / {x['first_byte']['p95']:.3f}" for x in levels) + " | |")
            rows.append(f"| whole answer p50 s | {mode} | " + " | ".join(f"{x['total']['p50']:.2f}" for x in levels)
                        + " | |")
    if results.get("soak"):
        s = results["soak"]
        rows += ["", (f"Soak: {s['model']} at {s['rate_rps']:.2f} requests/s (2× capacity) for {s['seconds']:.0f} "
                      f"s: {s['requests']} requests, answers by status {s['statuses']}; server memory "
                      f"{s['start_mb']:.0f} MB idle, {s['warm_mb']:.0f} MB after {WARMUP_S / 60:.0f} minutes, "
                      f"{s['end_mb']:.0f} MB in the last minute ({s['memory_growth'] * 100:+.1f} % after the warm-up, "
                      f"trend {s['trend_mb_per_min']:+.1f} MB/min, peak {s['peak_mb']:.0f} MB).")]
    meta = results["meta"]
    rows += ["", (f"`python bench/serve_load.py{' --quick' if meta['quick'] else ''}` on {meta['machine']}, "
                  f"{THREADS} threads, server and load generator on the same cores, {meta['date']}.")]
    readme.write_text(text.split(start)[0] + start + "\n" + "\n".join(rows) + "\n" + end + text.split(end)[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--levels", default=",".join(map(str, LEVELS)))
    ap.add_argument("--min-requests", type=int, default=24)
    ap.add_argument("--soak-seconds", type=float, default=600)
    ap.add_argument("--skip-soak", action="store_true")
    ap.add_argument("--skip-speech", action="store_true")
    ap.add_argument("--quick", action="store_true", help="min 8 requests per level, levels 1,4,16, 60-s soak")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--only", choices=["cli", "speech"], default=None,
                    help="measure only `seqspeech transcribe`'s latency per model (cli) or only speech, into the "
                         "existing results")
    args = ap.parse_args()
    if args.only:
        results = json.loads(args.out.read_text())
        if args.only == "cli":
            corpus = clips(24)
            for model in args.models.split(","):
                entry = results["asr"][model]
                entry["cli_p50_s"] = round(float(np.median(cli_latency(model, corpus))), 3)
                print(f"{model}: CLI p50 {entry['cli_p50_s']} s", flush=True)
        else:
            results["speech"] = run_speech(args.min_requests)
            results["speech_off"] = run_speech(args.min_requests, batching=False)
        if "soak" in results:
            results["soak"].update(memory_summary([tuple(m) for m in results["soak"]["rss_mb"]]))
        results["meta"]["command"] += f" + {' '.join(sys.argv)}"
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        update_readme(results)
        return
    levels = [int(c) for c in args.levels.split(",")]
    if args.quick:
        args.min_requests, args.soak_seconds = 8, min(args.soak_seconds, 60)
        levels = [c for c in levels if c <= 16]
    corpus = clips(24)
    results: dict = {"meta": {"levels": levels, "quick": args.quick, "date": time.strftime("%Y-%m-%d"),
                              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                              "clips": len(corpus), "command": " ".join(sys.argv)}, "asr": {}}
    for model in args.models.split(","):
        entry: dict = {}
        for mode, extra in (("on", ("--max-queue", "256")), ("off", ("--max-queue", "256", "--max-batch", "1"))):
            server = ServerProcess(model, *extra)
            try:
                asyncio.run(transcribe_load(server.url, model, corpus, 2, 4))  # warm-up
                entry[mode] = []
                for c in levels:
                    r = asyncio.run(transcribe_load(server.url, model, corpus, c, max(2 * c, args.min_requests)))
                    print(f"{model} batching {mode} c={c}: {r['throughput_rps']} req/s p50 {r['p50']} s "
                          f"p95 {r['p95']} s statuses {r['statuses']} wer {r['wer']}", flush=True)
                    entry[mode].append(r)
            finally:
                server.stop()
        entry["cli_p50_s"] = round(float(np.median(cli_latency(model, corpus))), 3)
        direct = direct_latency(model, corpus[: max(8, args.min_requests // 2)])
        by_c = {x["concurrency"]: x for x in entry["on"]}
        entry["direct_p50_s"] = round(float(np.median(direct)), 3)
        entry["overhead_c1"] = round(by_c[1]["p50"] / entry["direct_p50_s"] - 1, 4) if 1 in by_c else None
        off16 = {x["concurrency"]: x for x in entry["off"]}.get(16)
        entry["speedup_c16"] = round(by_c[16]["throughput_rps"] / off16["throughput_rps"], 3) if off16 else None
        print(f"{model}: direct p50 {entry['direct_p50_s']} s, overhead {entry['overhead_c1']}, "
              f"batching speed-up at c16 {entry['speedup_c16']}", flush=True)
        results["asr"][model] = entry
    if not args.skip_speech:
        results["speech"] = run_speech(args.min_requests)
        results["speech_off"] = run_speech(args.min_requests, batching=False)
    if not args.skip_soak:
        model = "ctc-conformer-synth-en"
        capacity = {x["concurrency"]: x for x in results["asr"].get(model, {}).get("on", [])}.get(16)
        rate = 2 * (capacity["throughput_rps"] if capacity else 4.0)
        server = ServerProcess(model)
        try:
            asyncio.run(transcribe_load(server.url, model, corpus, 2, 4))
            results["soak"] = asyncio.run(soak(server, model, corpus, rate, args.soak_seconds))
            print(f"soak: {results['soak']['statuses']} memory growth {results['soak']['memory_growth']}", flush=True)
        finally:
            server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    update_readme(results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
