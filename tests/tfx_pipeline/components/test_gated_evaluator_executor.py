"""The GatedEvaluator's executor run for real: TFMA's intervals, the judgement, TFX's blessing.

The models are tiny SavedModels with the taxi model's two signatures (serving_default on
serialized examples, transform_features giving the label) whose scores are set by hand, so a
test knows what the judge must find: a drop caused by one example (noise, whatever the jackknife
partitions), a model that got worse everywhere, a model broken on one slice.
"""

import math
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from scipy import stats
from tfx.components.evaluator import constants
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from models import features
from tests.conftest import DATA_ROOT, read_csv_rows
from tfx_pipeline import config as config_lib
from tfx_pipeline import pipeline as pipeline_lib
from tfx_pipeline.components.gated_evaluator import results
from tfx_pipeline.components.gated_evaluator.executor import Executor
from tfx_pipeline.components.gated_evaluator.rules import BlessingRules
from tfx_pipeline.metrics import histogram_metrics

ROWS = 400
ROW_ID = "row_id"
GOLDEN = 0.6180339887498949  # row_id * GOLDEN mod 1: a fixed, well-spread "noise" per row


class ScoredModel(tf.Module):
    """Scores 0.45 * label + 0.55 * noise(row), changed as asked: a known AUC, made worse at will."""

    def __init__(self, invert: bool = False, invert_payment_type: str = "", demote_row: int = -1):
        super().__init__()
        self.invert = invert
        self.invert_payment_type = invert_payment_type
        self.demote_row = demote_row
        spec = tf.TensorSpec([None], tf.string, name=features.EXAMPLES_INPUT)
        self.serve = tf.function(self._serve, input_signature=[spec])
        self.transform = tf.function(self._transform, input_signature=[spec])

    def _parse(self, examples):
        return tf.io.parse_example(
            examples,
            {
                ROW_ID: tf.io.FixedLenFeature([], tf.int64, default_value=0),
                features.TIPS_KEY: tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
                features.FARE_KEY: tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
                "payment_type": tf.io.FixedLenFeature([], tf.string, default_value=""),
            },
        )

    def _transform(self, examples):
        raw = self._parse(examples)
        threshold = features.TIP_FRACTION_THRESHOLD * raw[features.FARE_KEY]
        return {features.LABEL_KEY: tf.cast(raw[features.TIPS_KEY] > threshold, tf.int64)}

    def _serve(self, examples):
        raw = self._parse(examples)
        label = tf.cast(self._transform(examples)[features.LABEL_KEY], tf.float32)
        row = tf.cast(raw[ROW_ID], tf.float64)
        noise = tf.cast(tf.math.floormod(row * GOLDEN, 1.0), tf.float32)
        score = 0.45 * label + 0.55 * noise
        if self.invert:
            score = 1.0 - score
        if self.invert_payment_type:
            score = tf.where(
                tf.equal(raw["payment_type"], self.invert_payment_type), 1.0 - score, score
            )
        score = tf.where(tf.equal(raw[ROW_ID], self.demote_row), 0.0, score)
        return {features.PROBABILITY_OUTPUT: tf.reshape(score, [-1, 1])}


def example_of(row: dict[str, str], row_id: int) -> bytes:
    feature = {ROW_ID: tf.train.Feature(int64_list=tf.train.Int64List(value=[row_id]))}
    for key in (features.TIPS_KEY, features.FARE_KEY):
        if row[key]:
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(row[key])]))
    feature["payment_type"] = tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[row["payment_type"].encode()])
    )
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def label_of(row: dict[str, str]) -> int:
    tips, fare = float(row[features.TIPS_KEY] or 0), float(row[features.FARE_KEY] or 0)
    return int(tips > features.TIP_FRACTION_THRESHOLD * fare)


@pytest.fixture(scope="module")
def rows():
    return read_csv_rows(DATA_ROOT / "span-2" / "data.csv", limit=ROWS)


@pytest.fixture(scope="module")
def examples(rows, tmp_path_factory):
    """An Examples artifact: the eval split holds the first ROWS bundled rows, numbered."""
    uri = tmp_path_factory.mktemp("examples")
    (uri / "Split-eval").mkdir()
    path = str(uri / "Split-eval" / "data_tfrecord-00000-of-00001.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for row_id, row in enumerate(rows):
            writer.write(example_of(row, row_id))
    artifact = standard_artifacts.Examples()
    artifact.uri = str(uri)
    artifact.split_names = '["eval"]'
    return artifact


@pytest.fixture(scope="module")
def save_model(tmp_path_factory):
    """Saves a ScoredModel as a TFX Model artifact (the Trainer's Format-Serving layout)."""
    made = iter(range(1, 100))

    def save(**how) -> standard_artifacts.Model:
        model = ScoredModel(**how)
        artifact = standard_artifacts.Model()
        artifact.uri = str(tmp_path_factory.mktemp("model"))
        artifact.id = next(made)
        tf.saved_model.save(
            model,
            os.path.join(artifact.uri, "Format-Serving"),
            signatures={
                features.SERVING_EXAMPLES_SIGNATURE: model.serve.get_concrete_function(),
                features.TRANSFORM_SIGNATURE: model.transform.get_concrete_function(),
            },
        )
        return artifact

    return save


def evaluate(config, examples, model, baseline, rules: BlessingRules, tmp_path):
    """Runs the executor; returns (blessing artifact, judgement, validation result)."""
    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = str(tmp_path / "evaluation")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    os.makedirs(evaluation.uri)
    os.makedirs(blessing.uri)
    inputs = {"examples": [examples], "model": [model]}
    if baseline is not None:
        inputs["baseline_model"] = [baseline]
    Executor().Do(
        inputs,
        {"evaluation": [evaluation], "blessing": [blessing]},
        {
            "eval_config": proto_utils.proto_to_json(pipeline_lib.eval_config(config)),
            "blessing_rules": rules.to_json(),
            "example_splits": "null",
        },
    )
    return (
        blessing,
        results.read_judgement(evaluation.uri),
        tfma.load_validation_result(evaluation.uri),
        evaluation.uri,
    )


def rules_for(config, **changes) -> BlessingRules:
    return BlessingRules(**{**config.blessing_rules().__dict__, **changes})


def test_a_drop_made_by_one_example_is_noise_and_blesses(
    config, rows, examples, save_model, tmp_path
):
    # The positive ranked highest among the label-1 rows drops to the bottom: on ~100 positives
    # that costs about 0.01 of AUC, five times the allowed drop, all of it from one example.
    positives = [i for i, row in enumerate(rows) if label_of(row)]
    top = max(positives, key=lambda i: math.fmod(i * GOLDEN, 1.0))
    rules = rules_for(config, min_auc=0.5, max_auc_drop=0.002, min_slice_examples=50)
    blessing, judgement, validation, _ = evaluate(
        config, examples, save_model(demote_row=top), save_model(), rules, tmp_path
    )
    (change,) = [c for c in judgement.checks if c.rule == "max_auc_drop"]
    assert change.value.value < -0.002, "the point estimate alone would fail the model"
    assert change.value.has_interval() and change.value.high > -0.002
    assert judgement.blessed and validation.validation_ok
    assert os.path.exists(os.path.join(blessing.uri, constants.BLESSED_FILE_NAME))
    assert not os.path.exists(os.path.join(blessing.uri, constants.NOT_BLESSED_FILE_NAME))
    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.get_int_custom_property("current_model_id") == 1
    assert blessing.get_int_custom_property("baseline_model_id") == 2


def test_a_model_worse_everywhere_is_not_blessed(config, examples, save_model, tmp_path):
    rules = rules_for(config, min_auc=0.0, max_auc_drop=0.01, min_slice_examples=50)
    blessing, judgement, validation, _ = evaluate(
        config, examples, save_model(invert=True), save_model(), rules, tmp_path
    )
    assert not judgement.blessed and not validation.validation_ok
    assert "overall" in {c.slice for c in judgement.failures() if c.rule == "max_auc_drop"}
    assert os.path.exists(os.path.join(blessing.uri, constants.NOT_BLESSED_FILE_NAME))
    assert not os.path.exists(os.path.join(blessing.uri, constants.BLESSED_FILE_NAME))
    assert blessing.get_int_custom_property("blessed") == 0
    # TFMA's own format carries every failure, the drop as a diff against the baseline.
    diffs = [
        failure
        for per_slice in validation.metric_validations_per_slice
        for failure in per_slice.failures
        if not per_slice.slice_key.single_slice_keys and failure.metric_key.is_diff
    ]
    assert diffs and diffs[0].metric_threshold.change_threshold.absolute.value == -0.01


@pytest.fixture(scope="module")
def broken_card(rows, examples, save_model, tmp_path_factory):
    """A first model (no baseline) whose scores are inverted on Credit Card trips only."""
    tmp_path = tmp_path_factory.mktemp("broken")
    config = config_lib.PipelineConfig(
        pipeline_name="t",
        pipeline_root=str(tmp_path),
        data_root=str(DATA_ROOT),
        serving_model_dir=str(tmp_path / "serving" / "taxi"),
        metadata_path=None,
        schema_path=None,
        module_fingerprint="0",
    )
    rules = rules_for(config, min_auc=0.0, min_slice_examples=50)
    model = save_model(invert_payment_type="Credit Card")
    return evaluate(config, examples, model, None, rules, tmp_path)


def test_a_model_broken_on_one_slice_fails_naming_it(rows, broken_card):
    cards = sum(row["payment_type"] == "Credit Card" for row in rows)
    assert cards >= 50, "the sample must hold a judgeable Credit Card slice"
    blessing, judgement, validation, _ = broken_card
    # No baseline: a first model meets only the floors.
    assert not judgement.has_baseline
    assert [(c.slice, c.rule) for c in judgement.failures()] == [
        ("payment_type=Credit Card", "min_slice_auc")
    ]
    (failure,) = judgement.failures()
    assert failure.example_count == cards
    assert failure.reason().startswith("payment_type=Credit Card: auc = ")
    assert f"(n={cards}) fails >= 0.5: the whole interval is below 0.5" in failure.reason()
    # Cash holds (almost) no tips: reported, never failed.
    cash = judgement.for_slice("payment_type=Cash")
    assert cash and all(c.verdict != "FAIL" for c in cash)
    (per_slice,) = validation.metric_validations_per_slice
    assert [(k.column, k.bytes_value) for k in per_slice.slice_key.single_slice_keys] == [
        ("payment_type", b"Credit Card")
    ]
    assert blessing.get_int_custom_property("blessed") == 0


def test_the_summary_and_report_name_the_failing_slice_with_its_size_and_interval(
    rows, broken_card
):
    from tfx_pipeline.reporting import evaluation as evaluation_lib
    from tfx_pipeline.reporting import run_summary

    cards = sum(row["payment_type"] == "Credit Card" for row in rows)
    evaluation = evaluation_lib.read_evaluation(broken_card[3])
    summary = run_summary.RunSummary(run_id="r", evaluation=evaluation, blessed=False)
    lines = list(run_summary.format_summary(summary))
    reasons = lines[lines.index("Blessed:         NO") + 1 :]
    interval = r"\d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]"
    assert re.fullmatch(
        rf" +- payment_type=Credit Card: auc = {interval} \(n={cards}\) fails >= 0\.5: "
        r"the whole interval is below 0\.5",
        reasons[0],
    ), reasons
    auc_row = next(line for line in lines if line.strip().startswith("AUC "))
    assert re.search(rf"AUC +{interval} +- +>= 0$", auc_row), auc_row
    report = evaluation_lib.evaluation_report("r", False, evaluation)
    # Every slice with its size, interval and verdict; small and one-class ones say why.
    assert re.search(
        rf"^payment_type=Credit Card +{cards} +{interval} .*FAIL: >= 0.5: the whole interval",
        report,
        re.MULTILINE,
    ), report
    assert re.search(r"^payment_type=\S+ +\d+ .*not judged: too small to judge: n=", report, re.M)
    assert re.search(r"^payment_type=Cash +\d+ +n/a .*not judged: one class only", report, re.M)
    # The table of every metric keeps its columns: slice, metric, candidate, baseline, verdict.
    assert re.search(r"^payment_type=Credit Card\s+auc\s+\S+\s+-\s+FAIL\s+>= 0.5", report, re.M)


def test_jackknife_intervals_are_tfmas_formula_on_its_partitions(config, tmp_path):
    """TFMA 0.47.1's jackknife by hand: 20 partitions, delete-one estimates, a t interval.

    Each example goes to partition RandomState(seed).randint(20), drawn in the order examples
    are read; the interval is mean(delete-one estimates) +- t(0.975, 19) * SE, where SE is the
    standard deviation of the pseudo-values 20 * full - 19 * delete-one, over sqrt(20).
    """
    seed, buckets, count = 7, 20, 200
    rng = np.random.default_rng(1)
    labels = (rng.random(count) < 0.3).astype(np.int64)
    path = str(tmp_path / "examples.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for label in labels:
            feature = {
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "prediction": tf.train.Feature(
                    float_list=tf.train.FloatList(value=[float(rng.random())])
                ),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    eval_config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key="label", prediction_key="prediction")],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(
                        class_name="HistogramMetrics", module=histogram_metrics.__name__
                    )
                ]
            )
        ],
        # The pipeline's interval options, exactly.
        options=pipeline_lib.eval_config(config).options,
    )
    output = str(tmp_path / "out")
    tfma.run_model_analysis(
        eval_config=eval_config,
        data_location=path,
        output_path=output,
        random_seed_for_testing=seed,
    )
    measured = results.read_estimates(output)[("overall", "", "mean_label", False)]

    partition = np.random.RandomState(seed).randint(buckets, size=count)
    full = labels.mean()
    delete_one = np.array([labels[partition != k].mean() for k in range(buckets)])
    pseudo = buckets * full - (buckets - 1) * delete_one
    standard_error = pseudo.std(ddof=1) / math.sqrt(buckets)
    t = stats.t.ppf(0.975, buckets - 1)
    assert measured.value == pytest.approx(full, abs=1e-12)
    assert measured.low == pytest.approx(delete_one.mean() - t * standard_error, abs=1e-9)
    assert measured.high == pytest.approx(delete_one.mean() + t * standard_error, abs=1e-9)
    assert measured.high - measured.low > 0.05  # a real interval, not a point
