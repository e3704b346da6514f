"""local_runner.py's flags: bad flags and input paths fail fast naming every problem; nothing runs."""

import dataclasses
import shutil

import pytest

import local_runner
from tests.conftest import DATA_ROOT
from tfx_pipeline import inputs
from tfx_pipeline.problems import EXIT_USAGE
from tfx_pipeline.runners import local

# Fields the local runner fills from its input files rather than from a default.
SET_FROM_INPUTS = {"anomaly_policy_json"}


def parse(*argv):
    return local.build_parser(description="").parse_args(list(argv))


def run_main(capsys, *argv):
    code = local_runner.main(list(argv))
    return code, capsys.readouterr().err


@pytest.fixture
def output_dir(tmp_path):
    return tmp_path / "outputs"


def test_missing_data_root(capsys, tmp_path, output_dir):
    code, err = run_main(
        capsys, "--data-root", str(tmp_path / "nope"), "--output-dir", str(output_dir)
    )
    assert code == EXIT_USAGE
    assert "nope does not exist" in err
    assert not output_dir.exists(), "nothing may be written for a rejected run"


def test_data_root_without_spans(capsys, tmp_path, output_dir):
    (tmp_path / "data" / "other").mkdir(parents=True)
    code, err = run_main(
        capsys, "--data-root", str(tmp_path / "data"), "--output-dir", str(output_dir)
    )
    assert code == EXIT_USAGE
    assert "no span-N/ folders" in err


def test_empty_csv_in_latest_span(capsys, tmp_path, output_dir):
    shutil.copytree(DATA_ROOT / "span-1", tmp_path / "data" / "span-1")
    (tmp_path / "data" / "span-3").mkdir()
    (tmp_path / "data" / "span-3" / "data.csv").write_text("")
    code, err = run_main(
        capsys, "--data-root", str(tmp_path / "data"), "--output-dir", str(output_dir)
    )
    assert code == EXIT_USAGE
    assert "span-3/data.csv is empty" in err


def test_header_only_csv(capsys, tmp_path, output_dir):
    span = tmp_path / "data" / "span-1"
    span.mkdir(parents=True)
    header = (DATA_ROOT / "span-1" / "data.csv").read_text().splitlines()[0]
    (span / "data.csv").write_text(header + "\n")
    code, err = run_main(
        capsys, "--data-root", str(tmp_path / "data"), "--output-dir", str(output_dir)
    )
    assert code == EXIT_USAGE
    assert "has a header but no rows" in err


def test_unreadable_schema_and_bad_beam_arg_reported_together(capsys, tmp_path, output_dir):
    bad_schema = tmp_path / "schema.pbtxt"
    bad_schema.write_text("feature { name: 'fare' type: NOT_A_TYPE }")
    code, err = run_main(
        capsys,
        "--schema",
        str(bad_schema),
        "--beam-arg",
        "direct_num_workers=2",
        "--output-dir",
        str(output_dir),
    )
    assert code == EXIT_USAGE
    assert "is not a readable Schema text proto" in err
    assert "--beam-arg values must look like --name=value" in err


def test_missing_schema_suggests_inferring(capsys, tmp_path, output_dir):
    code, err = run_main(
        capsys, "--schema", str(tmp_path / "none.pbtxt"), "--output-dir", str(output_dir)
    )
    assert code == EXIT_USAGE
    assert "--infer-schema" in err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--train-steps", "0", "must be at least 1"),
        ("--tuner-trials", "two", "expected a whole number"),
        ("--min-auc", "1.2", "must be within [0, 1]"),
        ("--model-name", "../escape", "not a usable model name"),
        ("--beam-mode", "turbo", "invalid choice"),
    ],
)
def test_bad_flag_values(capsys, flag, value, message):
    with pytest.raises(SystemExit) as exit_info:
        local_runner.main([flag, value])
    assert exit_info.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_latest_span_is_the_highest_number(tmp_path):
    for number in (1, 2, 10):
        span = tmp_path / f"span-{number}"
        span.mkdir()
        (span / "data.csv").write_text("a,b\n1,2\n")
    number, files = inputs.latest_span_files(tmp_path)
    assert number == 10 and files == [tmp_path / "span-10" / "data.csv"]


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit):
        local_runner.main(["--help"])
    text = capsys.readouterr().out
    for flag in (
        "--data-root",
        "--output-dir",
        "--serving-dir",
        "--model-name",
        "--train-steps",
        "--eval-steps",
        "--tune",
        "--no-tune",
        "--tuner-trials",
        "--beam-mode",
        "--beam-workers",
        "--no-cache",
        "--beam-arg",
        "--infer-schema",
        "exit status",
    ):
        assert flag in text


def test_beam_args_pick_workers_from_the_mode():
    args = parse("--beam-mode", "multi_processing", "--beam-workers", "3")
    assert local.beam_args(args) == (
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=3",
    )
    # Beam's defaults travel as no args at all, which spares TFX's per-component sdist build.
    assert local.beam_args(parse()) == ()
    extra = parse("--beam-arg=--direct_num_workers=1")
    assert local.beam_args(extra)[-1] == "--direct_num_workers=1"


def test_bad_anomaly_policy_is_refused_before_running(capsys, tmp_path, output_dir):
    policy = tmp_path / "policy.json"
    policy.write_text('{"default": "ignore"}')
    code, err = run_main(capsys, "--anomaly-policy", str(policy), "--output-dir", str(output_dir))
    assert code == EXIT_USAGE
    assert "default must be 'fail' or 'warn'" in err
    policy.write_text("{not json")
    code, err = run_main(capsys, "--anomaly-policy", str(policy), "--output-dir", str(output_dir))
    assert "is not JSON" in err


def test_window_spans_defaults_to_the_ingested_span_only():
    assert parse().window_spans == 1
    assert parse("--window-spans", "10").window_spans == 10


def test_window_spans_must_be_a_positive_whole_number(capsys):
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            parse("--window-spans", bad)
        assert "--window-spans" in capsys.readouterr().err


def test_split_buckets_parse_train_and_eval_counts(capsys):
    assert parse().split_buckets == (3, 1)
    assert parse("--split-buckets", "19:1").split_buckets == (19, 1)
    for bad in ("19", "0:1", "a:b"):
        with pytest.raises(SystemExit):
            parse("--split-buckets", bad)
        assert "--split-buckets" in capsys.readouterr().err


def test_unset_flags_leave_every_setting_at_the_pipeline_configs_default(tmp_path):
    args = parse("--output-dir", str(tmp_path))
    checked = local.check_inputs(args)
    config = local.pipeline_config(args, checked, run_tuner=True)
    for field in dataclasses.fields(config):
        if field.default is dataclasses.MISSING or field.name in SET_FROM_INPUTS:
            continue
        assert getattr(config, field.name) == field.default, field.name


def test_blessing_flags_reach_the_config(tmp_path):
    args = parse(
        "--output-dir",
        str(tmp_path),
        "--gated-slices=payment_type,company",
        "--min-slice-examples=50",
        "--min-slice-auc=0.6",
        "--max-slice-auc-drop=0.1",
        "--max-slice-auc-gap=payment_type:Credit Card:Cash:0.2",
        "--max-slice-auc-gap=company:Flash Cab:Blue Diamond:0.3",
    )
    config = local.pipeline_config(args, local.check_inputs(args), run_tuner=True)
    rules = config.blessing_rules()
    assert rules.slice_features == ("payment_type", "company")
    assert (rules.min_slice_examples, rules.min_slice_auc, rules.max_slice_auc_drop) == (
        50,
        0.6,
        0.1,
    )
    assert [gap.text() for gap in rules.slice_gaps] == [
        "payment_type:Credit Card:Cash:0.2",
        "company:Flash Cab:Blue Diamond:0.3",
    ]
    assert parse("--gated-slices=").gated_slices == ()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--min-slice-auc", "2", "must be within [0, 1]"),
        ("--min-slice-examples", "0", "must be at least 1"),
        ("--max-slice-auc-gap", "payment_type:Cash:0.1", "FEATURE:VALUE:OTHER_VALUE:MAX_GAP"),
    ],
)
def test_bad_blessing_flags_are_refused(capsys, flag, value, message):
    with pytest.raises(SystemExit) as exit_info:
        local_runner.main([flag, value])
    assert exit_info.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err
