"""Atomic, duplicate-free pushes into a TF Serving base path."""

import os

import pytest

from tfx_pipeline.components.atomic_pusher import model_card, push


def make_model(path, weights: bytes):
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"graph")
    (path / "variables" / "variables.data-00000-of-00001").write_bytes(weights)
    return str(path)


def test_a_push_leaves_exactly_one_complete_version_and_no_staging(tmp_path):
    model = make_model(tmp_path / "model", b"w1")
    base = tmp_path / "serving" / "taxi"
    version, copied = push.push_atomically(model, str(base), now=1_800_000_000)
    assert (version, copied) == (1_800_000_000, True)
    assert os.listdir(base) == ["1800000000"]
    assert push.model_digest(str(base / "1800000000")) == push.model_digest(model)


def test_an_identical_model_is_not_pushed_again(tmp_path):
    model = make_model(tmp_path / "model", b"w1")
    base = tmp_path / "serving"
    first, _ = push.push_atomically(model, str(base), now=100)
    again, copied = push.push_atomically(model, str(base), now=200)
    assert (again, copied) == (first, False)
    assert os.listdir(base) == ["100"]


def test_versions_only_go_up_even_within_one_second_or_with_a_slow_clock(tmp_path):
    base = tmp_path / "serving"
    v1, _ = push.push_atomically(make_model(tmp_path / "a", b"a"), str(base), now=500)
    v2, _ = push.push_atomically(make_model(tmp_path / "b", b"b"), str(base), now=500)
    v3, _ = push.push_atomically(make_model(tmp_path / "c", b"c"), str(base), now=10)
    assert v1 < v2 < v3 == 502


def test_a_failed_copy_leaves_nothing_behind(tmp_path, monkeypatch):
    base = tmp_path / "serving"

    def broken_copy(source, target):
        os.makedirs(target)
        raise OSError("disk full")

    monkeypatch.setattr(push.shutil, "copytree", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        push.push_atomically(make_model(tmp_path / "m", b"x"), str(base), now=7)
    assert os.listdir(base) == []


def test_staging_left_by_a_killed_push_is_cleared_and_never_a_version(tmp_path):
    base = tmp_path / "serving"
    leftover = base / ".push-99-deadbeef"
    leftover.mkdir(parents=True)
    (leftover / "saved_model.pb").write_bytes(b"half")
    assert push.existing_versions(str(base)) == []
    version, _ = push.push_atomically(make_model(tmp_path / "m", b"x"), str(base), now=5)
    assert sorted(os.listdir(base)) == [str(version)]


def test_a_rolled_back_model_is_never_pushed_again(tmp_path):
    base = tmp_path / "serving"
    model = make_model(tmp_path / "m", b"bad weights")
    version, _ = push.push_atomically(model, str(base), now=5)
    os.rename(base / str(version), base / f".rolled_back-{version}")
    with pytest.raises(push.RolledBackModelError, match="rolled back"):
        push.push_atomically(model, str(base), now=6)
    assert push.existing_versions(str(base)) == []


def test_remote_destinations_find_an_identical_version_through_tensorflow_filesystems(tmp_path):
    # ram:// is a TensorFlow filesystem like gs://: no os.* call can reach it.
    import tensorflow as tf

    model = make_model(tmp_path / "model", b"w1")
    base = f"ram://{tmp_path.name}/serving/taxi"
    for root, _, names in os.walk(model):
        for name in names:
            relative = os.path.relpath(os.path.join(root, name), model)
            tf.io.gfile.makedirs(os.path.dirname(f"{base}/7/{relative}"))
            tf.io.gfile.copy(os.path.join(root, name), f"{base}/7/{relative}")
    assert push.existing_versions(base) == [7]
    assert push.identical_version(push.model_digest(model), base) == 7
    other = make_model(tmp_path / "other", b"w2")
    assert push.identical_version(push.model_digest(other), base) is None


# --- model cards ---------------------------------------------------------------------------

RULES_JSON = {
    "min_auc": 0.9,
    "max_auc_drop": 0.01,
    "slice_features": ["payment_type"],
    "min_slice_examples": 200,
    "min_slice_class_examples": 20,
    "min_slice_auc": 0.5,
    "max_slice_auc_drop": 0.05,
    "slice_gaps": [
        {"feature": "payment_type", "first": "Credit Card", "second": "Dispute", "max_gap": 0.1}
    ],
}
HYPERPARAMETERS = {"dropout": 0.2, "learning_rate": 0.009245, "num_layers": 1, "units_0": 64}
# (slice value or None for overall) -> candidate metrics, as (value, low, high); baseline and
# change are derived below. Dispute holds one example: too small to judge.
CANDIDATE_METRICS = {
    None: {"example_count": 1960.0, "mean_label": 0.3, "auc": (0.93, 0.92, 0.94)},
    "Credit Card": {"example_count": 719.0, "mean_label": 0.6, "auc": (0.61, 0.55, 0.66)},
    "Dispute": {"example_count": 1.0, "mean_label": 0.0, "auc": (0.0, None, None)},
    "<script>alert(1)</script>": {"example_count": 7.0, "mean_label": 0.0, "auc": (0.0,)},
}
TIMESTAMPS = {"train": (1404172800, 1483228000), "eval": (1404200000, 1483228700)}
ROWS = {"train": 6043, "eval": 1960}


def write_metrics(uri, with_baseline: bool = True) -> None:
    """TFMA's metrics file as the Evaluator writes it: candidate, baseline and their difference."""
    import tensorflow as tf
    from tensorflow_model_analysis.proto import metrics_for_slice_pb2

    os.makedirs(uri, exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(uri, "metrics-00000-of-00001.tfrecord")) as writer:
        for value, metrics in CANDIDATE_METRICS.items():
            record = metrics_for_slice_pb2.MetricsForSlice()
            if value is not None:
                record.slice_key.single_slice_keys.add(
                    column="payment_type", bytes_value=value.encode()
                )
            for name, number in metrics.items():
                low_high = number[1:] if isinstance(number, tuple) else ()
                number = number[0] if isinstance(number, tuple) else number
                models = [("candidate", number, False)]
                if with_baseline:
                    change = 0.01 if name == "auc" else 0.0
                    models += [("baseline", number - change, False), ("candidate", change, True)]
                for model, model_value, is_diff in models:
                    entry = record.metric_keys_and_values.add()
                    entry.key.name = name
                    entry.key.model_name = model if with_baseline else ""
                    entry.key.is_diff = is_diff
                    entry.value.double_value.value = model_value
                    if len(low_high) == 2 and low_high[0] is not None and model == "candidate":
                        shift = 0.0 if not is_diff else model_value - number
                        interval = entry.confidence_interval
                        interval.lower_bound.double_value.value = low_high[0] + shift
                        interval.upper_bound.double_value.value = low_high[1] + shift
            writer.write(record.SerializeToString())


def write_evaluation(uri, with_baseline: bool = True) -> None:
    """TFMA's metrics and the GatedEvaluator's real judgement of them beside it."""
    import json

    from tfx_pipeline.components.gated_evaluator import judge, results
    from tfx_pipeline.components.gated_evaluator.rules import BlessingRules

    write_metrics(uri, with_baseline)
    slices, gaps = results.read_slices(uri)
    rules = BlessingRules.from_json(json.dumps(RULES_JSON))
    judgement = judge.judge(rules, slices, gaps, has_baseline=with_baseline)
    results.write(uri, judgement, has_baseline=with_baseline)


def write_statistics(uri) -> None:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    for split, (low, high) in TIMESTAMPS.items():
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        dataset = stats.datasets.add(num_examples=ROWS[split])
        feature = dataset.features.add()
        feature.path.step.append("trip_start_timestamp")
        feature.num_stats.min, feature.num_stats.max = low, high
        os.makedirs(os.path.join(uri, f"Split-{split}"))
        with open(os.path.join(uri, f"Split-{split}", "FeatureStats.pb"), "wb") as handle:
            handle.write(stats.SerializeToString())


def artifact(kind, uri, artifact_id: int):
    from tfx.types import standard_artifacts

    made = getattr(standard_artifacts, kind)()
    made.uri = str(uri)
    made.id = artifact_id
    os.makedirs(made.uri, exist_ok=True)
    return made


@pytest.fixture
def pipeline_outputs(tmp_path):
    """The Pusher's inputs as the pipeline's components leave them on disk, MLMD ids 1 to 8."""
    import json
    import shutil

    from tests.conftest import SCHEMA_PATH
    from tfx_pipeline.components.gated_evaluator.executor import write_blessing
    from tfx_pipeline.components.infra_validator import executor as infra_executor

    root = tmp_path / "pipeline_root"
    examples = artifact("Examples", root / "examples", 1)
    examples.set_int_custom_property("span", 2)
    statistics = artifact("ExampleStatistics", root / "statistics", 2)
    write_statistics(statistics.uri)
    schema = artifact("Schema", root / "schema", 3)
    shutil.copy(SCHEMA_PATH, os.path.join(schema.uri, "schema.pbtxt"))
    hyperparameters = artifact("HyperParameters", root / "hyperparameters", 4)
    with open(os.path.join(hyperparameters.uri, "best_hyperparameters.txt"), "w") as handle:
        json.dump({"space": [], "values": HYPERPARAMETERS}, handle)
    model = artifact("Model", root / "model", 5)
    make_model(root / "model" / "Format-Serving", b"trained weights")
    evaluation = artifact("ModelEvaluation", root / "evaluation", 6)
    write_evaluation(evaluation.uri)
    blessing = artifact("ModelBlessing", root / "blessing", 7)
    write_blessing(blessing, model=model, baseline=None, component_id="Evaluator", blessed=True)
    infra_blessing = artifact("InfraBlessing", root / "infra_blessing", 8)
    warm = make_model(tmp_path / "warm", b"trained weights")
    os.makedirs(os.path.join(warm, "assets.extra"))
    with open(os.path.join(warm, "assets.extra", "tf_serving_warmup_requests"), "wb") as handle:
        handle.write(b"warmup records")
    outcome = infra_executor.Outcome(
        server="python",
        load_seconds=1.5,
        requests_checked=100,
        warmup_records=100,
        latency_ms={"candidate": {"p50_ms": 3.2, "p99_ms": 9.4}},
    )
    infra_executor._record(infra_blessing, outcome, warm, make_warmup=True)
    return {
        "model": [model],
        "model_blessing": [blessing],
        "infra_blessing": [infra_blessing],
        "evaluation": [evaluation],
        "hyperparameters": [hyperparameters],
        "statistics": [statistics],
        "schema": [schema],
        "examples": [examples],
    }


def run_pusher(tmp_path, input_dict, run_id="run-1", base=None, name="pushed"):
    """Our Pusher executor as TFX runs it; returns (PushedModel artifact, base path)."""
    from tfx.dsl.components.base import base_executor
    from tfx.proto import pusher_pb2
    from tfx.proto.orchestration import pipeline_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from tfx_pipeline.components.atomic_pusher.executor import Executor

    base = base or str(tmp_path / "serving" / "taxi")
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / name)
    context = base_executor.BaseExecutor.Context(
        tmp_dir=str(tmp_path / "tmp"),
        unique_id="9",
        pipeline_info=pipeline_pb2.PipelineInfo(id="taxi"),
        pipeline_run_id=run_id,
    )
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base)
    )
    Executor(context).Do(
        input_dict,
        {"pushed_model": [pushed]},
        {
            "push_destination": proto_utils.proto_to_json(destination),
            "card_pipeline_name": "taxi",
            "data_root": "/data/taxi",
        },
    )
    return pushed, base


def read_card(version_path):
    import json

    with open(os.path.join(version_path, model_card.CARD_JSON)) as handle:
        return json.load(handle)


def test_a_pushed_version_carries_its_model_card_in_assets_extra(tmp_path, pipeline_outputs):
    pushed, base = run_pusher(tmp_path, pipeline_outputs)
    assert pushed.get_int_custom_property("pushed") == 1
    (version,) = os.listdir(base)
    version_path = os.path.join(base, version)
    assert sorted(os.listdir(os.path.join(version_path, "assets.extra"))) == [
        "model_card.html",
        "model_card.json",
        "schema.pbtxt",
        "tf_serving_warmup_requests",
    ]
    card = read_card(version_path)
    assert card["model_details"]["version"] == int(version)
    # The PushedModel artifact archives the version as served, card included.
    assert read_card(pushed.uri) == card


def test_a_pushed_version_carries_the_schema_its_requests_are_checked_against(
    tmp_path, pipeline_outputs
):
    from tests.conftest import SCHEMA_PATH

    pushed, base = run_pusher(tmp_path, pipeline_outputs)
    (version,) = os.listdir(base)
    # The Schema artifact's text as it is, comments and all, in the version and its archive.
    for folder in (os.path.join(base, version), pushed.uri):
        with open(os.path.join(folder, push.SERVED_SCHEMA_FILE), "rb") as handle:
            assert handle.read() == SCHEMA_PATH.read_bytes()
    # A record of the push, like the card: the same model with another schema is not pushed
    # again, and its version keeps the schema it was pushed with.
    schema_uri = pipeline_outputs["schema"][0].uri
    with open(os.path.join(schema_uri, "schema.pbtxt"), "a") as handle:
        handle.write("# curated again\n")
    pushed_again, _ = run_pusher(tmp_path, pipeline_outputs, name="pushed-again")
    assert os.listdir(base) == [version]
    assert pushed_again.get_string_custom_property("pushed_version") == version
    with open(os.path.join(base, version, push.SERVED_SCHEMA_FILE), "rb") as handle:
        assert handle.read() == SCHEMA_PATH.read_bytes()


def test_the_card_reports_the_inputs_values(tmp_path, pipeline_outputs):
    _, base = run_pusher(tmp_path, pipeline_outputs, run_id="2026-12-01T18:36:03.512947")
    (version,) = os.listdir(base)
    card = read_card(os.path.join(base, version))
    assert card["schema_version"] == 1
    details = card["model_details"]
    assert (details["pipeline_name"], details["model_name"]) == ("taxi", "taxi")
    assert details["pipeline_run_id"] == "2026-12-01T18:36:03.512947"
    assert details["serving_path"] == os.path.join(base, version)
    assert details["pushed_at"].endswith("Z") and details["pushed_at"][:4] >= "2026"
    assert details["label"] == {"name": "big_tipper", "definition": "tips > 0.2 * fare"}
    assert set(details["frameworks"]) == {
        "tensorflow",
        "tfx",
        "tensorflow-transform",
        "tensorflow-model-analysis",
    }
    import tensorflow as tf

    assert details["frameworks"]["tensorflow"] == tf.__version__

    data = card["training_data"]
    assert (data["data_root"], data["spans"]) == ("/data/taxi", [2])
    assert data["statistics"]["rows"] == ROWS and data["statistics"]["total_rows"] == 8003
    assert data["statistics"]["date_range"]["min"] == "2014-07-01T00:00:00Z"
    assert data["statistics"]["date_range"]["max_unix_seconds"] == 1483228700

    by_name = {f["name"]: f for f in card["features"]}
    assert by_name["fare"] == {
        "name": "fare",
        "type": "FLOAT",
        "role": "numeric",
        "label_source": True,
    }
    assert (by_name["tips"]["role"], by_name["tips"]["label_source"]) == ("label source", True)
    assert by_name["payment_type"]["role"] == "vocabulary"
    assert by_name["trip_start_timestamp"]["role"] == "not used"
    assert by_name["trip_start_hour"]["type"] == "INT"

    assert card["hyperparameters"]["values"] == HYPERPARAMETERS

    evaluation = card["evaluation"]
    assert evaluation["has_baseline"] and evaluation["blessed"] is True
    overall, *_ = evaluation["slices"]
    assert overall["slice"] == "overall" and overall["example_count"] == 1960
    auc = overall["metrics"]["auc"]
    assert auc["candidate"] == {"value": 0.93, "low": 0.92, "high": 0.94}
    assert auc["baseline"]["value"] == pytest.approx(0.92)
    assert auc["change"]["value"] == pytest.approx(0.01)
    assert overall["verdict"] == "pass"
    assert {c["threshold"] for c in overall["checks"]} == {
        ">= 0.9",
        "change >= -0.01 vs baseline",
    }
    slices = {row["slice"]: row for row in evaluation["slices"]}
    assert slices["payment_type=Credit Card"]["verdict"] == "pass"
    assert slices["payment_type=Dispute"]["verdict"] == "not judged"
    assert [r["rule"] for r in evaluation["rules"]] == [
        "min_auc",
        "max_auc_drop",
        "min_slice_auc",
        "max_slice_auc_drop",
    ]
    (gap,) = evaluation["slice_gaps"]
    assert gap["slices"] == "payment_type=Credit Card vs Dispute"
    assert gap["verdict"] == "not judged"
    assert {
        "part": "evaluation",
        "slice": "payment_type=Dispute",
        "limit": ("too small to judge: n=1 (< 200)"),
    } in card["known_limits"]

    infra = card["infra_validation"]
    assert (infra["blessed"], infra["server"], infra["requests_checked"]) == (True, "python", 100)
    assert infra["latency_ms"]["candidate"]["p99_ms"] == 9.4

    assert card["lineage"] == {
        "examples": [1],
        "statistics": 2,
        "schema": 3,
        "hyperparameters": 4,
        "model": 5,
        "evaluation": 6,
        "model_blessing": 7,
        "infra_blessing": 8,
    }
    assert card["not_recorded"] == []


def documented_fields() -> set[str]:
    """The field paths of docs/model_card.md's schema table."""
    import re

    from tests.conftest import REPO_ROOT

    text = (REPO_ROOT / "docs" / "model_card.md").read_text()
    return set(re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE))


def card_fields(value, prefix: str, documented: set[str]):
    """Every field path of a card, as the schema table names them ([] lists, .* maps)."""
    if isinstance(value, dict):
        if set(value) == {"value", "low", "high"}:
            return  # an estimate, described once
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            if f"{path}.*" in documented:
                yield f"{path}.*"  # a map: its keys are data, its values described in one row
                continue
            yield path
            yield from card_fields(item, path, documented)
    elif isinstance(value, list):
        for item in value:
            yield from card_fields(item, prefix + "[]", documented)


def test_every_documented_field_is_in_the_card_and_every_card_field_documented(
    tmp_path, pipeline_outputs
):
    documented = documented_fields()
    assert {"schema_version", "evaluation.slices[].verdict", "lineage.evaluation"} <= documented
    _, base = run_pusher(tmp_path, pipeline_outputs)
    (version,) = os.listdir(base)
    full = set(card_fields(read_card(os.path.join(base, version)), "", documented))
    # not_recorded's entries only exist in a card with missing parts.
    sparse_card = model_card.build_card(
        model_card.PushFacts("taxi", 7, 0.0, "/s/taxi/7"), model_card.CardInputs()
    )
    found = full | set(card_fields(sparse_card, "", documented))
    assert documented - found == set(), "documented but not in a card"
    assert found - documented == set(), "in a card but not documented"


def test_the_html_card_is_one_self_contained_page(tmp_path, pipeline_outputs):
    _, base = run_pusher(tmp_path, pipeline_outputs)
    (version,) = os.listdir(base)
    with open(os.path.join(base, version, model_card.CARD_HTML)) as handle:
        page = handle.read()
    assert page.startswith("<!DOCTYPE html>")
    assert (
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">" in page
    )
    lowered = page.lower()
    for fetching in ("http:", "https:", "<script", "src=", "href=", "<link", "@import", "url("):
        assert fetching not in lowered, fetching
    # A slice value is data, shown as text: the one with markup in it is escaped.
    assert "payment_type=&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f"Model card: taxi version {version}" in page
    assert "0.9300 [0.9200, 0.9400]" in page and "too small to judge: n=1 (&lt; 200)" in page


def test_a_re_evaluated_identical_model_is_not_pushed_again_whatever_its_card_says(
    tmp_path, pipeline_outputs
):
    _, base = run_pusher(tmp_path, pipeline_outputs, run_id="run-1")
    (version,) = os.listdir(base)
    first_card = read_card(os.path.join(base, version))
    # Another run, another evaluation of the same model: another card, the same model.
    write_evaluation(pipeline_outputs["evaluation"][0].uri, with_baseline=False)
    pushed, _ = run_pusher(tmp_path, pipeline_outputs, run_id="run-2", name="pushed-again")
    assert os.listdir(base) == [version]
    assert pushed.get_string_custom_property("pushed_version") == version
    # The version keeps the card of the push that made it.
    assert read_card(os.path.join(base, version)) == first_card
    assert first_card["model_details"]["pipeline_run_id"] == "run-1"


def test_the_digest_leaves_the_card_out_and_rolled_back_models_stay_refused(tmp_path):
    model = make_model(tmp_path / "model", b"w1")
    base = tmp_path / "serving"

    def card(text):
        return lambda version: {f: f"{text} {version}".encode() for f in model_card.CARD_FILES}

    version, copied = push.push_atomically(model, str(base), now=100, extra_files=card("first"))
    assert (version, copied) == (100, True)
    assert (base / "100" / model_card.CARD_JSON).read_text() == "first 100"
    assert push.model_digest(str(base / "100")) == push.model_digest(model)
    assert push.push_atomically(model, str(base), now=200, extra_files=card("second")) == (
        100,
        False,
    )
    assert (base / "100" / model_card.CARD_JSON).read_text() == "first 100"
    # Any other file still counts: the warmup requests are part of what is served.
    (base / "100" / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"w")
    assert push.model_digest(str(base / "100")) != push.model_digest(model)
    (base / "100" / "assets.extra" / "tf_serving_warmup_requests").unlink()

    from serving import rollback
    from tfx_pipeline.operations import history

    push.push_atomically(make_model(tmp_path / "b", b"w2"), str(base), 300, card("bad"))
    rollback.rollback(str(base), reason="test")
    assert push.existing_versions(str(base)) == [100]
    with pytest.raises(push.RolledBackModelError):
        push.push_atomically(make_model(tmp_path / "b2", b"w2"), str(base), 400, card("again"))
    # Both cards stay with their versions, and the push history finds them where they are.
    assert history._model_card(str(base / "100"), 100) == str(base / "100" / model_card.CARD_HTML)
    rolled_back = base / ".rolled_back-300" / model_card.CARD_HTML
    assert history._model_card(str(base / "300"), 300) == str(rolled_back)
    assert rolled_back.read_text() == "bad 300"


def test_missing_inputs_are_not_recorded_and_the_model_is_still_pushed(tmp_path, pipeline_outputs):
    inputs = {key: pipeline_outputs[key] for key in ("model", "model_blessing", "infra_blessing")}
    # A statistics artifact whose file is not a statistics proto.
    broken = artifact("ExampleStatistics", tmp_path / "broken", 12)
    os.makedirs(os.path.join(broken.uri, "Split-train"))
    with open(os.path.join(broken.uri, "Split-train", "FeatureStats.pb"), "wb") as handle:
        handle.write(b"\xff not a proto")
    inputs["statistics"] = [broken]
    pushed, base = run_pusher(tmp_path, inputs, run_id="")
    assert pushed.get_int_custom_property("pushed") == 1
    (version,) = os.listdir(base)
    card = read_card(os.path.join(base, version))
    # No schema given: the version is served unchecked.
    assert not os.path.exists(os.path.join(base, version, push.SERVED_SCHEMA_FILE))
    for part in ("features", "hyperparameters", "evaluation"):
        assert card[part] == "not recorded", part
    assert card["training_data"]["statistics"] == "not recorded"
    assert card["model_details"]["pipeline_run_id"] == "not recorded"
    assert card["lineage"]["evaluation"] == "not recorded"
    assert card["lineage"]["statistics"] == 12
    reasons = {entry["part"]: entry["reason"] for entry in card["not_recorded"]}
    assert set(reasons) == {
        "model_details.pipeline_run_id",
        "training_data.examples",
        "training_data.statistics",
        "features",
        "hyperparameters",
        "evaluation",
    }
    assert reasons["training_data.statistics"].startswith(f"could not read {broken.uri}: ")
    assert "defaults" in reasons["hyperparameters"]
    # What was given is still there.
    assert card["infra_validation"]["blessed"] is True
    with open(os.path.join(base, version, model_card.CARD_HTML)) as handle:
        assert "not recorded" in handle.read()


def test_a_remote_push_writes_the_card_and_never_duplicates(tmp_path):
    import tensorflow as tf

    model = make_model(tmp_path / "model", b"w1")
    base = f"ram://{tmp_path.name}-remote/serving/taxi"
    card = {model_card.CARD_JSON: b"{}", model_card.CARD_HTML: b"<p>"}
    version, copied = push.push_by_copy(model, base, now=50, extra_files=lambda v: card)
    assert (version, copied) == (50, True)
    for relative in ("saved_model.pb", "variables/variables.data-00000-of-00001", *card):
        assert tf.io.gfile.exists(f"{base}/50/{relative}"), relative
    assert push.push_by_copy(model, base, now=60, extra_files=lambda v: card) == (50, False)
    other = make_model(tmp_path / "other", b"w2")
    assert push.push_by_copy(other, base, now=10) == (51, True)


def test_the_card_reads_what_the_other_components_write_where_they_write_it():
    from tensorflow_model_analysis.proto import metrics_for_slice_pb2

    from tfx_pipeline.components.gated_evaluator import judge, results
    from tfx_pipeline.components.infra_validator import executor as infra_executor

    assert model_card.JUDGEMENT_FILE == results.JUDGEMENT_FILE
    assert model_card.INFRA_VALIDATION_FILE == infra_executor.RESULT_FILE
    assert model_card.OVERALL == judge.OVERALL
    assert (model_card.NOT_JUDGED, model_card.FAIL, model_card.PASS) == (
        judge.NOT_JUDGED,
        judge.FAIL,
        judge.PASS,
    )
    assert model_card.CHANGE_RULES == judge.CHANGE_RULES
    for rule, bound in (("min_auc", 0.9), ("max_auc_drop", -0.01), ("slice_gaps", 0.1)):
        check = judge.Check("overall", rule, "auc", bound, judge.PASS)
        assert model_card.threshold_text(rule, bound) == check.threshold
    key = metrics_for_slice_pb2.SliceKey()
    assert model_card.slice_name(key) == results.slice_name(key) == "overall"
    key.single_slice_keys.add(column="payment_type", bytes_value=b"Credit Card")
    key.single_slice_keys.add(column="trip_start_day", int64_value=3)
    assert model_card.slice_name(key) == results.slice_name(key)


def test_the_cards_page_clips_rate_intervals_and_shows_counts_without_one():
    wide = {"value": 0.4809, "low": -0.4994, "high": 1.4131}
    count = {"value": 1960.0, "low": 1772.98, "high": 1951.02}
    auc = {"candidate": wide, "baseline": None, "change": None}
    assert model_card._metric_cells("auc", auc) == ("0.4809 [0.0000, 1.0000]", "-", "-")
    examples = {"candidate": count, "baseline": None, "change": None}
    assert model_card._metric_cells("example_count", examples) == ("1960", "-", "-")
    # A ratio that is not a rate keeps TFMA's bounds.
    calibration = {"candidate": {"value": 1.2, "low": 0.9, "high": 1.5}, "baseline": None}
    assert model_card._metric_cells("calibration", {**calibration, "change": None})[0] == (
        "1.2000 [0.9000, 1.5000]"
    )
