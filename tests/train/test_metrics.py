"""Metric sinks alone: the record and its names, metrics.jsonl (strict JSON, non-finite
numbers as null), TensorBoard tags, the progress bar."""

from __future__ import annotations

import json
import math

import pytest

from seqdiff.processes import AutoregressiveProcess, MaskedDiffusion
from seqdiff.train.metrics import (JsonlSink, MetricSinks, ProgressBar, TensorBoardSink, Throughput, finite_or_none,
                                   step_record, train_metric_name)
from seqdiff.vocab import VocabSpec

VOCAB = VocabSpec(size=6, mask_id=5, pad_id=4)


def record(step=4, loss=1.5, **kw):
    args = {"objective": "train_nelbo_bits_per_token", "lr": 1e-3, "grad_norm": 0.7, "tokens_per_s": 1e4, "elapsed_s": 2.5}
    return step_record(step, loss=loss, **{**args, **kw})


def test_the_record_holds_the_logged_names():
    rec = record()
    assert list(rec) == ["step", "loss", "train_nelbo_bits_per_token", "lr", "grad_norm", "tokens_per_s", "elapsed_s"]
    assert rec["train_nelbo_bits_per_token"] == 1.5 / math.log(2)  # nats -> bits
    assert rec["step"] == 4 and rec["lr"] == 1e-3 and rec["grad_norm"] == 0.7


def test_a_skipped_step_keeps_its_line_with_the_reason_and_nulls():
    rec = record(loss=math.nan, skipped="non-finite loss")
    assert rec["skipped"] == "non-finite loss"
    assert rec["loss"] is None and rec["train_nelbo_bits_per_token"] is None
    assert rec["lr"] == 1e-3 and rec["grad_norm"] == 0.7
    rec = record(grad_norm=math.inf, skipped="non-finite gradient norm")
    assert rec["grad_norm"] is None and rec["loss"] == 1.5
    assert "skipped" not in record()


def test_training_objective_names_say_what_the_loss_is():
    assert train_metric_name(MaskedDiffusion(VOCAB, estimator="time")) == "train_truncated_nelbo_bits_per_token"
    assert train_metric_name(MaskedDiffusion(VOCAB, estimator="count")) == "train_nelbo_bits_per_token"
    assert train_metric_name(AutoregressiveProcess(VOCAB)) == "train_nll_bits_per_token"
    assert train_metric_name(MaskedDiffusion(VOCAB, corruption="ens")) == "train_ens_objective_bits_per_token"
    # a process that declares nothing is refused where runs are built (the Process contract), so
    # every name here is the process's own declaration


def test_jsonl_lines_are_strict_json_with_non_finite_numbers_as_null(tmp_path):
    sink = JsonlSink(tmp_path / "metrics.jsonl")
    sink.write(record(2))
    sink.write({**record(4), "valid_bits_per_token": math.nan})
    sink.write({**record(6, loss=math.inf, skipped="non-finite loss"), "valid_bits_per_token": -math.inf})
    sink.close()
    text = (tmp_path / "metrics.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    lines = [json.loads(l, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}")) for l in text.splitlines()]
    assert [l["step"] for l in lines] == [2, 4, 6]
    assert lines[0] == record(2)
    assert lines[1]["valid_bits_per_token"] is None and lines[1]["loss"] == 1.5
    assert lines[2]["loss"] is None and lines[2]["valid_bits_per_token"] is None and lines[2]["skipped"] == "non-finite loss"


def test_finite_or_none_leaves_everything_else():
    rec = {"a": 1, "b": 2.5, "c": "x", "d": None, "e": float("nan"), "f": True}
    assert finite_or_none(rec) == {"a": 1, "b": 2.5, "c": "x", "d": None, "e": None, "f": True}


def test_tensorboard_tags_are_the_finite_numbers(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'seqdiff[test]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sink = TensorBoardSink.open(tmp_path / "tb")
    assert sink is not None
    sink.write({**record(2), "valid_bits_per_token": 2.25})
    sink.write(record(4, loss=math.nan, skipped="non-finite loss"))
    sink.close()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert tags == {"loss", "train_nelbo_bits_per_token", "lr", "grad_norm", "tokens_per_s", "elapsed_s",
                    "valid_bits_per_token"}  # not "step", not the string "skipped"
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(2, 1.5)]  # the skipped step's null is not logged
    assert [e.step for e in acc.Scalars("lr")] == [2, 4]
    assert acc.Scalars("valid_bits_per_token")[0].value == pytest.approx(2.25)


def test_sinks_of_a_run(tmp_path):
    with MetricSinks.open(tmp_path, tensorboard=False) as sinks:
        sinks.write(record(2))
    assert [type(s) for s in sinks.sinks] == [JsonlSink]
    assert not (tmp_path / "tensorboard").exists()
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == record(2)
    MetricSinks([]).write(record(2))  # the other ranks: nothing written anywhere


def test_throughput_counts_tokens_between_takes():
    meter = Throughput()
    meter.add(300)
    meter.add(200)
    rate, elapsed = meter.take()
    assert elapsed > 0 and rate == pytest.approx(500 / elapsed, rel=1e-9)  # the first rate counts from the start
    rate2, elapsed2 = meter.take()
    assert rate2 == 0.0 and elapsed2 >= elapsed and meter.elapsed() >= elapsed2


def test_progress_bar(capsys):
    with ProgressBar(False, 10, 0) as bar:
        bar.update(1.0)
    assert bar.bar is None
    with ProgressBar(True, 10, 4) as bar:
        bar.update(0.25)
        bar.update(0.125)
        assert bar.bar.n == 6 and bar.bar.postfix == "loss=0.1250"
