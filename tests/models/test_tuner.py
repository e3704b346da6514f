"""The search space builds working models, and a search whose trials all fail raises."""

import numpy as np
import pytest
import tensorflow as tf

from models import features, tuner
from tests.models.test_model import COUNTS, random_batch


def test_search_space_has_what_the_model_reads():
    names = set(tuner.search_space().values)
    assert {"learning_rate", "num_layers", "embedding_dim", "dropout", "units_0"} <= names


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sampled_hyperparameters_build_a_working_model(seed):
    space = tuner.search_space()
    values = {hp.name: hp.random_sample(seed + i) for i, hp in enumerate(space.space)}
    hparams = tuner.taxi_model.ModelHParams.from_dict(values)
    assert len(hparams.hidden_units) == values["num_layers"]
    assert hparams.learning_rate == values["learning_rate"]
    model = tuner.taxi_model.build_model(hparams, COUNTS)
    output = model(random_batch(4)).numpy()
    assert output.shape == (4, 1) and np.all((output >= 0) & (output <= 1))


def test_a_search_whose_trials_all_fail_raises(tmp_path):
    search = tuner.make_tuner(COUNTS, max_trials=2, seed=0, directory=str(tmp_path))
    # Features without the label: every trial's fit fails.
    unlabeled = tf.data.Dataset.from_tensor_slices(random_batch(32)).batch(8)
    with pytest.raises(RuntimeError, match="none of 2 trials completed"):
        search.search(
            x=unlabeled,
            validation_data=unlabeled,
            epochs=1,
            steps_per_epoch=2,
            validation_steps=1,
            verbose=0,
        )


def test_a_search_that_completes_reports_a_best_trial(tmp_path):
    search = tuner.make_tuner(COUNTS, max_trials=1, seed=0, directory=str(tmp_path))
    batch = random_batch(256)
    label = (batch[features.transformed_name("fare")].numpy() > 0).astype(np.int64)
    data = tf.data.Dataset.from_tensor_slices((batch, label)).batch(32).repeat()
    search.search(
        x=data, validation_data=data, epochs=1, steps_per_epoch=5, validation_steps=2, verbose=0
    )
    best = search.get_best_hyperparameters(1)[0]
    assert "learning_rate" in best.values


def test_tuner_fn_hands_tfx_a_strict_search_over_transformed_data(
    tf_transform_output, transform_output_dir, tmp_path
):
    import types

    # The datasets are only built here, not read: an empty gzipped TFRecord file is enough.
    data_file = str(tmp_path / "part-0.gz")
    tf.io.TFRecordWriter(data_file, options="GZIP").close()
    fn_args = types.SimpleNamespace(
        custom_config={"seed": 3, "batch_size": 16, "tuner_trials": 2},
        transform_graph_path=transform_output_dir,
        working_dir=str(tmp_path),
        train_files=[data_file],
        eval_files=[data_file],
        train_steps=5,
        eval_steps=2,
    )
    result = tuner.tuner_fn(fn_args)
    assert isinstance(result.tuner, tuner.StrictRandomSearch)
    assert result.tuner.oracle.max_trials == 2
    assert result.fit_kwargs["steps_per_epoch"] == 5
    assert result.fit_kwargs["validation_steps"] == 2
    features_spec = result.fit_kwargs["x"].element_spec[0]
    assert set(features_spec) == set(features.model_input_names())
