"""Trainer: smoke, NaN guard, accumulation, exact resume, averaging, snapshots, early stopping, AMP."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from ddp_worker import (
    PlainBatchSampler,
    StatefulBatchSampler,
    ToyDataset,
    ToyModel,
    collate,
    toy_model,
)

import seqspeech.training.trainer as trainer_module
from seqspeech.errors import ConfigError, ModelLoadError
from seqspeech.training import Trainer, TrainerConfig, TrainingError, load_checkpoint
from seqspeech.training.checkpoint import step_checkpoint_name


def config(**overrides: Any) -> TrainerConfig:
    base = dict(
        scheduler="constant",
        warmup_steps=0,
        lr=1e-2,
        log_every=1,
        tensorboard=False,
        progress=False,
        device="cpu",
        checkpoint_every=1000,
    )
    base.update(overrides)
    return TrainerConfig(**base)


def log_events(out_dir, event: str) -> list[dict]:
    records = [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]
    return [r for r in records if r["event"] == event]


def weights(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_smoke_loss_falls_and_logs(tmp_path):
    dataset = ToyDataset(32, bad=(3,))
    trainer = Trainer(
        toy_model(),
        dataset,
        PlainBatchSampler(32, 4),
        collate,
        config(max_steps=20, lr=3e-2, tensorboard=True, log_every=5),
        tmp_path,
        extra_state={"model": {"hidden": 16}},
    )
    result = trainer.fit()
    train = log_events(tmp_path, "train")
    assert [r["step"] for r in train] == [5, 10, 15, 20]
    assert train[-1]["loss"] < 0.5 * train[0]["loss"]
    assert {"lr", "grad_norm", "mae", "items_per_s", "elapsed", "skipped_items"} <= set(train[0])
    assert result.step == 20 and result.stop_reason == "max_steps"
    assert result.epoch == 2  # 8 batches per epoch
    sampler = PlainBatchSampler(32, 4)
    seen_item_3 = 2 + sum(3 in b for b in list(sampler._batches_for(2))[:4])  # epochs 0, 1 whole, 2 half
    assert result.skipped_items == seen_item_3
    assert result.last_checkpoint.name == step_checkpoint_name(20)
    state = load_checkpoint(result.last_checkpoint)
    assert state["extra"] == {"model": {"hidden": 16}} and state["config"]["max_steps"] == 20
    assert list((tmp_path / "tensorboard").iterdir())
    assert log_events(tmp_path, "end")[0]["stop_reason"] == "max_steps"


def test_skipped_items_are_counted(tmp_path):
    result = Trainer(
        toy_model(),
        ToyDataset(16, bad=(0, 5)),
        PlainBatchSampler(16, 4),
        collate,
        config(max_epochs=3),
        tmp_path,
    ).fit()
    assert result.step == 12 and result.epoch == 3 and result.stop_reason == "max_epochs"
    assert result.skipped_items == 6


class NaNModel(ToyModel):
    """Returns a NaN loss on the forward calls listed in ``nan_calls`` (all calls from ``nan_from`` on)."""

    def __init__(self, nan_calls: tuple[int, ...] = (), nan_from: int | None = None) -> None:
        torch.manual_seed(0)
        super().__init__()
        self.calls = 0
        self.nan_calls, self.nan_from = set(nan_calls), nan_from

    def forward(self, batch):
        out = super().forward(batch)
        self.calls += 1
        if self.calls in self.nan_calls or (self.nan_from is not None and self.calls >= self.nan_from):
            out["loss"] = out["loss"] * float("nan")
        return out


def test_nan_losses_are_skipped_and_counted(tmp_path):
    model = NaNModel(nan_calls=(2, 5))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = Trainer(
        model, ToyDataset(16), PlainBatchSampler(16, 2), collate, config(max_steps=6), tmp_path
    ).fit()
    assert result.step == 6 and result.nan_skips == 2
    assert model.calls == 8
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [r["step"] for r in log_events(tmp_path, "nan_skip")] == [1, 3]


def test_nan_patience_stops_with_clear_error(tmp_path):
    trainer = Trainer(
        NaNModel(nan_from=4),
        ToyDataset(16),
        PlainBatchSampler(16, 2),
        collate,
        config(max_steps=50, nan_patience=3),
        tmp_path,
    )
    with pytest.raises(TrainingError, match=r"3 non-finite losses or gradient norms in a row .* step 3"):
        trainer.fit()


@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_accumulation_matches_doubled_batch(tmp_path, amp):
    def run(batch_size: int, accum: int, out) -> dict[str, torch.Tensor]:
        sampler = PlainBatchSampler(16, batch_size)
        Trainer(
            toy_model(),
            ToyDataset(16),
            sampler,
            collate,
            config(max_steps=6, accum_steps=accum, amp=amp),
            out,
        ).fit()
        return weights(out / step_checkpoint_name(6))

    accumulated = run(2, 2, tmp_path / "accum")
    doubled = run(4, 1, tmp_path / "double")
    tol = 1e-5 if amp == "none" else 2e-2
    for name, value in doubled.items():
        assert torch.allclose(accumulated[name], value, atol=tol, rtol=tol), name


class KillAt(Exception):
    pass


class DyingModel(ToyModel):
    """Dropout model that raises on forward call ``die_at`` (simulates a killed job)."""

    def __init__(self, die_at: int | None) -> None:
        torch.manual_seed(0)
        super().__init__(dropout=0.3)
        self.calls, self.die_at = 0, die_at

    def forward(self, batch):
        self.calls += 1
        if self.calls == self.die_at:
            raise KillAt
        return super().forward(batch)


def bucket_sampler(n: int, batch_size: int) -> Any:
    """The real data sampler (if present), with a curriculum epoch 0: resume must not depend on it."""
    samplers = pytest.importorskip("seqspeech.data.samplers")
    durations = [1.0 + (i * 7 % n) / n for i in range(n)]
    return samplers.BucketBatchSampler(
        durations, max_seconds=100.0, max_batch_size=batch_size, num_buckets=1, curriculum=True, seed=3
    )


@pytest.mark.parametrize("sampler_cls", [StatefulBatchSampler, PlainBatchSampler, bucket_sampler])
def test_exact_resume_mid_epoch_with_dropout_and_augmentation(tmp_path, monkeypatch, sampler_cls):
    now = [0.0]
    monkeypatch.setattr(trainer_module, "_clock", lambda: now[0])

    def make(die_at: int | None, out):
        # 10 items, batch 2 -> 5 batches per epoch; checkpoint at step 6 is mid-epoch 1
        return Trainer(
            DyingModel(die_at),
            ToyDataset(10, augment=True),
            sampler_cls(10, 2),
            collate,
            config(
                max_steps=13,
                checkpoint_every=3,
                keep_checkpoints=10,
                scheduler="cosine",
                warmup_steps=2,
                accum_steps=1,
            ),
            out,
        )

    full = make(None, tmp_path / "full").fit()
    assert full.step == 13

    killed = make(8, tmp_path / "killed")  # dies during step 8, after the step-6 checkpoint
    now[0] = 0.0
    with pytest.raises(KillAt):
        killed.fit()
    assert (tmp_path / "killed" / step_checkpoint_name(6)).exists()
    assert not (tmp_path / "killed" / step_checkpoint_name(9)).exists()
    saved = load_checkpoint(tmp_path / "killed" / step_checkpoint_name(6))
    assert (saved["epoch"], saved["batches_done"]) == (1, 1)

    torch.manual_seed(123)  # a fresh process: different init and RNG, all restored from the checkpoint
    resumed_trainer = make(None, tmp_path / "killed")
    resumed = resumed_trainer.fit(resume=True)
    assert resumed.step == 13
    for name, value in weights(full.last_checkpoint).items():
        assert torch.equal(weights(resumed.last_checkpoint)[name], value), name
    full_opt = load_checkpoint(full.last_checkpoint)["optimizer"]["state"]
    resumed_opt = load_checkpoint(resumed.last_checkpoint)["optimizer"]["state"]
    assert all(torch.equal(full_opt[k]["exp_avg"], resumed_opt[k]["exp_avg"]) for k in full_opt)
    # resumed run skipped the consumed batch of epoch 1 rather than re-training on it
    assert resumed_trainer.model.calls == 13 - 6


def test_elapsed_time_continues_after_resume(tmp_path, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(trainer_module, "_clock", lambda: now[0])

    class Slow(ToyModel):
        def forward(self, batch):
            now[0] += 10.0  # each step takes ten (fake) seconds
            return super().forward(batch)

    def make(steps):
        return Trainer(
            Slow(),
            ToyDataset(8),
            PlainBatchSampler(8, 2),
            collate,
            config(max_steps=steps, checkpoint_every=2),
            tmp_path,
        )
    first = make(4).fit()
    assert first.elapsed_seconds == pytest.approx(40.0)
    now[0] = 1000.0  # the new process's clock is unrelated
    second = make(6).fit(resume=True)
    assert second.step == 6 and second.elapsed_seconds == pytest.approx(60.0)


def test_rotation_and_averaging_of_last_checkpoints(tmp_path):
    model = toy_model(batchnorm=True)
    result = Trainer(
        model,
        ToyDataset(16),
        PlainBatchSampler(16, 4),
        collate,
        config(max_steps=6, checkpoint_every=1, keep_checkpoints=3, average_last=2),
        tmp_path,
    ).fit()
    steps = sorted(p.name for p in tmp_path.glob("step-*.pt"))
    assert steps == [step_checkpoint_name(s) for s in (4, 5, 6)]
    averaged = load_checkpoint(result.averaged_checkpoint)["model"]
    five, six = weights(tmp_path / step_checkpoint_name(5)), weights(tmp_path / step_checkpoint_name(6))
    for name, value in averaged.items():
        if value.is_floating_point():
            assert torch.allclose(value, (five[name] + six[name]) / 2), name
        else:
            assert torch.equal(value, six[name]), name
    assert averaged["net.1.num_batches_tracked"].item() == 6
    assert not torch.equal(five["net.0.weight"], six["net.0.weight"])


def test_snapshots_by_training_time_and_time_budget(tmp_path, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(trainer_module, "_clock", lambda: now[0])

    class Minute(ToyModel):
        def forward(self, batch):
            now[0] += 60.0  # one (fake) minute per step
            return super().forward(batch)

    torch.manual_seed(0)
    result = Trainer(
        Minute(),
        ToyDataset(16),
        PlainBatchSampler(16, 2),
        collate,
        config(max_minutes=5.5, snapshot_minutes=(2, 4.5)),
        tmp_path,
    ).fit()
    assert result.stop_reason == "max_minutes" and result.step == 6
    assert load_checkpoint(tmp_path / "snapshot-2min.pt")["step"] == 2
    assert load_checkpoint(tmp_path / "snapshot-4.5min.pt")["step"] == 5
    assert sorted(p.name for p in tmp_path.glob("snapshot-*")) == ["snapshot-2min.pt", "snapshot-4.5min.pt"]


def test_dev_evaluation_early_stopping_and_best(tmp_path):
    scores = iter([5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 3.8, 3.9])
    seen: list[bool] = []

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        seen.append(model.training)
        return {"wer": next(scores)}

    dev = ToyDataset(6)
    result = Trainer(
        toy_model(),
        ToyDataset(16),
        PlainBatchSampler(16, 2),
        collate,
        config(max_steps=100, eval_every=2, early_stop_patience=2, early_stop_metric="wer"),
        tmp_path,
        dev_dataset=dev,
        dev_sampler=PlainBatchSampler(6, 3, shuffle=False),
        evaluate_fn=evaluate,
    ).fit()
    assert result.stop_reason == "early_stop" and result.step == 10
    assert result.best_metric == 3.0 and load_checkpoint(result.best_checkpoint)["step"] == 6
    assert seen == [False] * 5
    dev_logs = log_events(tmp_path, "dev")
    assert [r["wer"] for r in dev_logs] == [5.0, 4.0, 3.0, 3.5, 3.6]
    # dev loss is the item-weighted mean of the model's loss over the whole dev set
    model = toy_model()
    model.load_state_dict(weights(tmp_path / "best.pt"))
    model.eval()
    with torch.no_grad():
        expected = model(collate([dev[i] for i in range(6)]))["loss"].item()
    assert dev_logs[2]["loss"] == pytest.approx(expected, rel=1e-5)


def test_eval_at_epoch_end_by_default_with_max_mode(tmp_path):
    result = Trainer(
        toy_model(),
        ToyDataset(8),
        PlainBatchSampler(8, 2),
        collate,
        config(max_epochs=3, early_stop_metric="acc", early_stop_mode="max"),
        tmp_path,
        evaluate_fn=lambda m: {"acc": 1.0},
    ).fit()
    assert [r["step"] for r in log_events(tmp_path, "dev")] == [4, 8, 12]
    assert result.best_metric == 1.0 and load_checkpoint(result.best_checkpoint)["step"] == 4


def test_bf16_autocast_on_cpu_trains(tmp_path):
    result = Trainer(
        toy_model(),
        ToyDataset(32),
        PlainBatchSampler(32, 4),
        collate,
        config(max_steps=20, lr=3e-2, amp="bf16", log_every=5),
        tmp_path,
    ).fit()
    train = log_events(tmp_path, "train")
    assert result.step == 20 and result.nan_skips == 0
    assert train[-1]["loss"] < 0.5 * train[0]["loss"]
    assert log_events(tmp_path, "start")[0]["amp"] == "bf16"


def test_resume_from_corrupt_checkpoint_names_the_file(tmp_path):
    (tmp_path / step_checkpoint_name(4)).write_bytes(b"\x00garbage")
    trainer = Trainer(
        toy_model(), ToyDataset(8), PlainBatchSampler(8, 2), collate, config(max_steps=6), tmp_path
    )
    with pytest.raises(ModelLoadError, match=step_checkpoint_name(4)):
        trainer.fit(resume=True)


def test_resume_with_nothing_saved_starts_fresh_and_finished_run_is_a_no_op(tmp_path):
    def make():
        return Trainer(
            toy_model(),
            ToyDataset(8),
            PlainBatchSampler(8, 2),
            collate,
            config(max_steps=3),
            tmp_path,
        )
    first = make().fit(resume=True)
    assert first.step == 3
    again = make().fit(resume=True)
    assert again.step == 3 and again.last_checkpoint == first.last_checkpoint


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "at least one of max_steps"),
        ({"max_steps": 0}, "max_steps must be an integer >= 1"),
        ({"max_steps": 5, "amp": "fp32"}, "amp must be one of"),
        ({"max_steps": 5, "scheduler": "linear"}, "scheduler must be one of"),
        ({"max_steps": 5, "scheduler": "noam", "warmup_steps": 0}, "warmup_steps must be an integer >= 1"),
        ({"max_minutes": 5.0, "scheduler": "cosine"}, "cosine"),
        ({"max_steps": 5, "average_last": 6, "keep_checkpoints": 5}, "average_last"),
        ({"max_steps": 5, "betas": (0.9, 1.5)}, "betas"),
        ({"max_steps": 5, "early_stop_mode": "lowest"}, "early_stop_mode"),
        ({"max_steps": 5, "snapshot_minutes": (10, -1)}, "snapshot_minutes"),
    ],
)
def test_config_validation(overrides, message):
    with pytest.raises(ConfigError, match=message):
        TrainerConfig(**overrides)


def test_config_accepts_yaml_lists():
    cfg = TrainerConfig(max_steps=5, betas=[0.9, 0.99], snapshot_minutes=[10, 20, 40])
    assert cfg.betas == (0.9, 0.99) and cfg.snapshot_minutes == (10, 20, 40)


def test_fp16_on_cpu_and_bad_model_output_are_clear_errors(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("fp16 is allowed on CUDA")
    trainer = Trainer(
        toy_model(),
        ToyDataset(8),
        PlainBatchSampler(8, 2),
        collate,
        config(max_steps=2, amp="fp16", device=None),
        tmp_path,
    )
    with pytest.raises(ConfigError, match="fp16"):
        trainer.fit()

    class NoLoss(ToyModel):
        def forward(self, batch):
            return {"mae": super().forward(batch)["mae"]}

    with pytest.raises(TrainingError, match="'loss'"):
        Trainer(
            NoLoss(), ToyDataset(8), PlainBatchSampler(8, 2), collate, config(max_steps=2), tmp_path
        ).fit()


@pytest.mark.parametrize("native", [False, True])
def test_amp_auto_uses_bf16_only_where_native(tmp_path, monkeypatch, native):
    """A CPU without AVX512-BF16/AMX emulates bf16 (a Conformer step 10x slower than float32): ``auto`` trains
    in float32 there, in bf16 where the hardware has it; a forced ``bf16`` on such a CPU warns."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert trainer_module.native_bf16(torch.device("cpu")) is native

    def run(amp: str, out) -> str:
        Trainer(toy_model(), ToyDataset(8), PlainBatchSampler(8, 2), collate, config(max_steps=1, amp=amp),
                out).fit()
        return log_events(out, "start")[0]["amp"]

    assert run("auto", tmp_path / "auto") == ("bf16" if native else "none")
    if native:
        assert run("bf16", tmp_path / "forced") == "bf16"
    else:
        with pytest.warns(UserWarning, match="no native bf16"):
            assert run("bf16", tmp_path / "forced") == "bf16"
