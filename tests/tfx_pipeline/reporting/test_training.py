"""The report's readers of the training curve and the Tuner's trials, on files the real writers wrote."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from models import features, tuner
from models import model as taxi_model
from tests.models.test_model import COUNTS, random_batch
from tfx_pipeline.reporting import training


def fare_sign_data(size: int = 256) -> tf.data.Dataset:
    batch = random_batch(size, seed=4)
    label = (batch[features.transformed_name("fare")].numpy() > 0).astype(np.int64)
    return tf.data.Dataset.from_tensor_slices((batch, label)).batch(32).repeat()


def test_reads_the_curve_the_trainer_writes(tmp_path):
    """The writer (models/model.py) and this reader agree on the file's name and format."""
    model = taxi_model.build_model(taxi_model.ModelHParams(), COUNTS)
    data = fare_sign_data()
    written = taxi_model.train(model, data, data, train_steps=14, eval_steps=5, curve_points=5)
    taxi_model.write_training_history(written, str(tmp_path))

    read = training.read_training_history(str(tmp_path))
    assert read is not None
    assert read.epochs == [1, 2, 3, 4, 5] and read.steps == [3, 6, 9, 12, 14]
    assert read.validation_steps == 1
    assert set(read.metrics) == set(written.metrics) >= {"loss", "auc", "val_loss", "val_auc"}
    for name, values in written.metrics.items():
        assert read.metrics[name] == pytest.approx(values, rel=1e-12), name


def test_a_value_recorded_as_null_reads_as_nan(tmp_path):
    history = taxi_model.TrainingHistory(
        epochs=[1, 2], steps=[4, 8], validation_steps=2, metrics={"val_auc": [math.nan, 0.5]}
    )
    taxi_model.write_training_history(history, str(tmp_path))
    read = training.read_training_history(str(tmp_path))
    assert math.isnan(read.metrics["val_auc"][0]) and read.metrics["val_auc"][1] == 0.5


def test_a_model_without_a_curve_has_none(tmp_path):
    assert training.read_training_history(str(tmp_path)) is None


@pytest.mark.parametrize(
    "content",
    [
        {"epochs": [1, 2], "steps": [5], "metrics": {"loss": [0.1, 0.2]}},
        {"epochs": [1], "steps": [5], "metrics": {"loss": [0.1, 0.2]}},
        {"epochs": [1], "metrics": {}},
        [1, 2],
    ],
)
def test_a_malformed_curve_is_refused_naming_the_file(tmp_path, content):
    (tmp_path / training.TRAINING_HISTORY_FILE).write_text(json.dumps(content))
    with pytest.raises(ValueError, match="training_history.json is not a training history"):
        training.read_training_history(str(tmp_path))


@pytest.fixture(scope="module")
def tuner_results(tmp_path_factory):
    """(the Tuner's tuner_results folder as TFX's executor writes it, the search behind it)."""
    from tfx.components.tuner import executor
    from tfx.types import standard_artifacts

    search = tuner.make_tuner(
        COUNTS, max_trials=3, seed=0, directory=str(tmp_path_factory.mktemp("search"))
    )
    data = fare_sign_data()
    search.search(
        x=data, validation_data=data, epochs=1, steps_per_epoch=3, validation_steps=2, verbose=0
    )
    outputs = {}
    for key, artifact_type in (
        ("best_hyperparameters", standard_artifacts.HyperParameters),
        ("tuner_results", standard_artifacts.TunerResults),
    ):
        artifact = artifact_type()
        artifact.uri = str(tmp_path_factory.mktemp(key))
        outputs[key] = [artifact]
    executor.write_best_hyperparameters(search, outputs)
    return outputs["tuner_results"][0].uri, search


def test_reads_every_trial_the_tuner_recorded_in_the_order_they_ran(tuner_results):
    uri, search = tuner_results
    trials = training.read_trials(uri)
    ran = sorted(search.oracle.trials.values(), key=lambda trial: trial.trial_id)
    assert [trial.number for trial in trials] == [int(trial.trial_id) for trial in ran]
    assert len(trials) == 3
    for read, recorded in zip(trials, ran, strict=True):
        assert read.score == pytest.approx(recorded.score)
        assert read.values == recorded.hyperparameters.values
        assert read.status is None  # TFX writes completed trials only, with no status


def test_no_search_results_read_as_no_trials(tmp_path):
    assert training.read_trials(str(tmp_path)) == []


def test_a_trial_without_a_score_reads_as_none(tmp_path):
    (tmp_path / training.TUNER_RESULTS_FILE).write_text(
        json.dumps([{"trial_id": "1", "score": None, "dropout": 0.1}, {"trial_id": "0"}])
    )
    trials = training.read_trials(str(tmp_path))
    assert [(t.number, t.score, t.values) for t in trials] == [
        (0, None, {}),
        (1, None, {"dropout": 0.1}),
    ]


def test_malformed_search_results_are_refused_naming_the_file(tmp_path):
    (tmp_path / training.TUNER_RESULTS_FILE).write_text(json.dumps({"trial_id": "0"}))
    with pytest.raises(ValueError, match="tuner_results.json is not a list of trials"):
        training.read_trials(str(tmp_path))
