"""The --window-spans flag: parsed, checked, and handed to the pipeline config."""

import pytest

import local_runner


def test_window_spans_defaults_to_the_ingested_span_only():
    assert local_runner.build_parser().parse_args([]).window_spans == 1
    assert local_runner.build_parser().parse_args(["--window-spans", "10"]).window_spans == 10


def test_window_spans_must_be_a_positive_whole_number(capsys):
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            local_runner.build_parser().parse_args(["--window-spans", bad])
        assert "--window-spans" in capsys.readouterr().err


def test_split_buckets_parse_train_and_eval_counts(capsys):
    assert local_runner.build_parser().parse_args([]).split_buckets == (3, 1)
    parsed = local_runner.build_parser().parse_args(["--split-buckets", "19:1"])
    assert parsed.split_buckets == (19, 1)
    for bad in ("19", "0:1", "a:b"):
        with pytest.raises(SystemExit):
            local_runner.build_parser().parse_args(["--split-buckets", bad])
        assert "--split-buckets" in capsys.readouterr().err
