"""local_runner.py's flags: bad flags and input paths fail fast naming every problem; nothing runs."""

import dataclasses
import pathlib
import shutil

import pytest

import local_runner
from tests.conftest import DATA_ROOT
from tfx_pipeline import inputs, node_ids
from tfx_pipeline.notifications import events
from tfx_pipeline.problems import EXIT_USAGE
from tfx_pipeline.runners import local
from tfx_pipeline.runners.exit_codes import EXIT_FAILED, EXIT_NOT_BLESSED, EXIT_OK

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
        "--beam-runner",
        "--beam-mode",
        "--beam-workers",
        "--no-cache",
        "--beam-arg",
        "--infer-schema",
        "--notifications",
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


def test_a_bad_notifications_file_is_refused_with_the_other_problems(capsys, tmp_path, output_dir):
    notifications = tmp_path / "notifications.json"
    notifications.write_text(
        '{"sinks": {"audit": {"type": "jsonl", "path": "a.jsonl"}}, "events": {"pushd": ["audit"]}}'
    )
    code, err = run_main(
        capsys,
        "--notifications",
        str(notifications),
        "--beam-arg",
        "direct_num_workers=2",
        "--output-dir",
        str(output_dir),
    )
    assert code == EXIT_USAGE
    assert f"notifications file {notifications}: unknown event 'pushd'" in err
    assert "--beam-arg values must look like --name=value" in err
    assert not output_dir.exists(), "nothing may be written for a rejected run"


def test_a_good_notifications_file_reaches_the_checked_inputs(tmp_path):
    notifications = tmp_path / "notifications.json"
    notifications.write_text(
        '{"sinks": {"audit": {"type": "jsonl", "path": "a.jsonl"}}, "events": {"pushed": ["audit"]}}'
    )
    checked = local.check_inputs(parse("--notifications", str(notifications)))
    assert [s.name for s in checked.notifications.sinks_for(events.PUSHED)] == ["audit"]
    assert local.check_inputs(parse()).notifications.sinks == {}


# What every event of a run carries besides its own details.
FACTS = {"span": 3, "log": "/out/logs/run-1.log"}


@pytest.fixture(scope="module")
def summary_types():
    """The run summary's real types (they load TFMA, so only the tests that need them pay)."""
    from tfx_pipeline.components.gated_evaluator.judge import Estimate
    from tfx_pipeline.reporting.evaluation import Evaluation, MetricRow
    from tfx_pipeline.reporting.run_summary import RunSummary

    return RunSummary, Evaluation, MetricRow, Estimate


def test_a_run_the_data_gate_stopped_notifies_data_refused(summary_types):
    RunSummary = summary_types[0]
    summary = RunSummary(
        run_id="r1",
        states={node_ids.EXAMPLE_VALIDATOR: "COMPLETE", node_ids.DATA_GATE: "FAILED"},
        anomalies=["[eval] company: SCHEMA_MISSING_COLUMN: column dropped"],
    )
    error = "DataGateError: 1 anomalies break the data policy: company: column dropped"
    event = local.outcome_event(EXIT_FAILED, summary, node_ids.DATA_GATE, error, [5], FACTS)
    assert event.kind == events.DATA_REFUSED
    assert (
        event.title == "span 3 refused by the data gate; nothing trained, still serving version 5"
    )
    assert event.details["anomalies"] == summary.anomalies
    assert (event.details["error"], event.run_id) == (error, "r1")
    # The gate's failure is told apart by MLMD's state too, when no component was seen running.
    again = local.outcome_event(EXIT_FAILED, summary, None, error, [5], FACTS)
    assert again.kind == events.DATA_REFUSED


def test_any_other_failure_notifies_run_failed_naming_the_component(summary_types):
    RunSummary = summary_types[0]
    summary = RunSummary(run_id="r2", states={node_ids.DATA_GATE: "COMPLETE"})
    event = local.outcome_event(
        EXIT_FAILED, summary, node_ids.TRAINER, "ValueError: bad shape", [], FACTS
    )
    assert event.kind == events.RUN_FAILED
    assert event.title == "run failed at Trainer; nothing served"
    assert event.details == {**FACTS, "node": "Trainer", "error": "ValueError: bad shape"}
    # A failure before anything reached MLMD still notifies.
    early = local.outcome_event(EXIT_FAILED, None, None, "OSError: disk full", [4], FACTS)
    assert (early.kind, early.title) == (
        events.RUN_FAILED,
        "run failed at the pipeline; still serving version 4",
    )


def test_a_model_not_blessed_notifies_every_reason(summary_types):
    RunSummary, Evaluation = summary_types[:2]
    by_evaluator = RunSummary(
        run_id="r3",
        blessed=False,
        evaluation=Evaluation(blessing_reasons=["AUC 0.61 < 0.9", "Cash slice AUC 0.4 < 0.5"]),
    )
    event = local.outcome_event(EXIT_NOT_BLESSED, by_evaluator, None, None, [5], FACTS)
    assert event.kind == events.NOT_BLESSED
    assert event.title == "new model not blessed, nothing pushed; still serving version 5"
    assert event.details["reasons"] == ["AUC 0.61 < 0.9", "Cash slice AUC 0.4 < 0.5"]
    by_infra = RunSummary(
        run_id="r4", blessed=True, infra_blessed=False, infra="no answer; p99 80 ms > 50 ms"
    )
    event = local.outcome_event(EXIT_NOT_BLESSED, by_infra, None, None, [5], FACTS)
    assert event.summary_lines == [
        "infra validation: no answer",
        "infra validation: p99 80 ms > 50 ms",
    ]


def test_a_new_version_notifies_pushed_and_an_unchanged_one_nothing(summary_types):
    RunSummary, Evaluation, MetricRow, Estimate = summary_types
    summary = RunSummary(
        run_id="r5",
        blessed=True,
        infra_blessed=True,
        pushed_path="/srv/serving/taxi/1796150279",
        evaluation=Evaluation(
            metrics=[MetricRow("AUC", Estimate(0.93191, 0.92, 0.94), None, ">= 0.9")]
        ),
    )
    event = local.outcome_event(EXIT_OK, summary, None, None, [1796140000], FACTS)
    assert event.kind == events.PUSHED
    assert event.title == "version 1796150279 pushed (AUC 0.9319)"
    assert event.details == {
        **FACTS,
        "version": 1796150279,
        "path": "/srv/serving/taxi/1796150279",
        "auc": 0.93191,
        "previous_version": 1796140000,
    }
    # Cached or identical: the version was there before the run, so nothing happened to tell.
    assert local.outcome_event(EXIT_OK, summary, None, None, [1796150279], FACTS) is None
    assert local.outcome_event(EXIT_OK, RunSummary(run_id="r6"), None, None, [], FACTS) is None


def test_a_significant_live_drop_measured_in_this_run_notifies_live_quality_drop(summary_types):
    import dataclasses as dc

    from tfx_pipeline.reporting.live_quality import LiveQuality

    RunSummary, _, _, Estimate = summary_types
    live = LiveQuality(
        run="r7",
        version=1796150279,
        spans=(4,),
        example_count=614,
        auc=Estimate(0.85, 0.83, 0.87),
        evaluated_auc=Estimate(0.93, 0.91, 0.95),
        evaluated_spans=(3,),
        change=Estimate(-0.08, -0.11, -0.05),
        max_drop=0.01,
        significant_drop=True,
    )
    event = local.live_quality_event(RunSummary(run_id="r7", live=live))
    assert event.kind == events.LIVE_QUALITY_DROP
    assert (
        event.title == "live AUC of version 1796150279 dropped on span 4: 0.8500, evaluated 0.9300"
    )
    assert event.details["change"] == {"value": -0.08, "low": -0.11, "high": -0.05}
    assert (event.details["version"], event.details["max_drop"], event.run_id) == (
        1796150279,
        0.01,
        "r7",
    )
    assert "SIGNIFICANT DROP" in event.summary_lines[0]
    # Nothing to tell: no drop, a drop alerted on by the run that measured it, or no measure.
    quiet = dc.replace(live, significant_drop=False)
    cached = dc.replace(live, measured_in_run="r6")
    for summary in (RunSummary("r8", live=quiet), RunSummary("r8", live=cached), RunSummary("r8")):
        assert local.live_quality_event(summary) is None
    assert local.live_quality_event(None) is None


def test_the_live_drop_limit_defaults_to_the_evaluators_and_is_checked(tmp_path, capsys):
    args = parse("--output-dir", str(tmp_path), "--live-max-auc-drop", "0.05")
    assert local.pipeline_config(args, local.check_inputs(args), True).live_max_auc_drop == 0.05
    assert parse().live_max_auc_drop is None
    with pytest.raises(SystemExit):
        parse("--live-max-auc-drop", "2")
    assert "--live-max-auc-drop" in capsys.readouterr().err


SEARCH = '{"space": [], "values": {"learning_rate": 0.004, "num_layers": 1, "units_0": 32}}'


def test_hyperparameters_from_a_tuner_folder_are_imported_without_a_search(tmp_path):
    folder = tmp_path / "best_hyperparameters" / "8"
    folder.mkdir(parents=True)
    (folder / inputs.HYPERPARAMETERS_FILE).write_text(SEARCH)
    args = parse("--hyperparameters", str(folder), "--output-dir", str(tmp_path / "out"))
    checked = local.check_inputs(args)
    assert checked.hyperparameters == folder / inputs.HYPERPARAMETERS_FILE
    config = local.pipeline_config(args, checked, run_tuner=False)
    assert config.hyperparameters_uri == str(folder.resolve())


def test_a_hyperparameters_file_among_others_is_imported_from_a_copy(tmp_path):
    source = tmp_path / "search.json"
    source.write_text(SEARCH)
    (tmp_path / "other.txt").write_text("x")
    args = parse("--hyperparameters", str(source), "--output-dir", str(tmp_path / "out"))
    config = local.pipeline_config(args, local.check_inputs(args), run_tuner=False)
    copied = sorted(pathlib.Path(config.hyperparameters_uri).iterdir())
    assert [p.name for p in copied] == [inputs.HYPERPARAMETERS_FILE]
    assert copied[0].read_text() == SEARCH
    # The same values again: the same folder, so the Importer reuses its artifact.
    assert local.pipeline_config(args, local.check_inputs(args), False).hyperparameters_uri == (
        config.hyperparameters_uri
    )


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "is not JSON"),
        ('{"values": {}}', "has no values"),
        ('{"values": {"units_0": [32]}}', "values must be numbers or strings: ['units_0']"),
    ],
)
def test_bad_hyperparameters_files_are_refused(capsys, tmp_path, output_dir, content, message):
    source = tmp_path / "search.json"
    source.write_text(content)
    code, err = run_main(capsys, "--hyperparameters", str(source), "--output-dir", str(output_dir))
    assert code == EXIT_USAGE
    assert f"hyperparameters file {source}" in err and message in err
    assert not output_dir.exists()


def test_hyperparameters_exclude_a_search_and_must_exist(capsys, tmp_path, output_dir):
    code, err = run_main(
        capsys,
        "--tune",
        "--hyperparameters",
        str(tmp_path / "none"),
        "--output-dir",
        str(output_dir),
    )
    assert code == EXIT_USAGE
    assert "--hyperparameters reuses an earlier search: it excludes --tune" in err
    assert f"hyperparameters file {tmp_path / 'none'} does not exist" in err
    code, err = run_main(
        capsys, "--hyperparameters", str(tmp_path), "--output-dir", str(output_dir)
    )
    assert f"hyperparameters folder {tmp_path} must hold only best_hyperparameters.txt" in err
