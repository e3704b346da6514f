"""tuner_fn: the hyperparameter search that TFX's Tuner component runs (Keras Tuner random search)."""

from typing import Any

import keras_tuner
import tensorflow_transform as tft
from keras_tuner.engine import trial as trial_lib

from models import model as taxi_model

MAX_HIDDEN_LAYERS = 3


def search_space() -> keras_tuner.HyperParameters:
    """Learning rate, depth and width of the deep tower, embedding width and dropout."""
    hp = keras_tuner.HyperParameters()
    hp.Float("learning_rate", 1e-3, 1e-2, sampling="log", default=3e-3)
    hp.Int("num_layers", 1, MAX_HIDDEN_LAYERS, default=2)
    for i in range(MAX_HIDDEN_LAYERS):
        hp.Choice(f"units_{i}", [16, 32, 64, 128], default=64 if i == 0 else 32)
    hp.Choice("embedding_dim", [4, 8, 16], default=8)
    hp.Float("dropout", 0.0, 0.3, step=0.1, default=0.1)
    return hp


def hparams_from_trial(hp: keras_tuner.HyperParameters) -> taxi_model.ModelHParams:
    return taxi_model.ModelHParams.from_dict(hp.values)


class StrictRandomSearch(keras_tuner.RandomSearch):
    """Random search that fails when no trial completed.

    Keras Tuner records failed trials and returns normally, and TFX then marks the Tuner
    COMPLETE with meaningless "best" hyperparameters; a failed search must fail the run.
    """

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        super().search(*fit_args, **fit_kwargs)
        trials = list(self.oracle.trials.values())
        completed = [t for t in trials if t.status == trial_lib.TrialStatus.COMPLETED]
        if not completed:
            messages = sorted(
                {str(t.message).strip().splitlines()[-1] for t in trials if t.message}
            )
            raise RuntimeError(
                f"hyperparameter search failed: none of {len(trials)} trials completed; "
                f"errors: {messages or ['(no message recorded)']}"
            )


def make_tuner(
    counts: dict[str, int], max_trials: int, seed: int, directory: str
) -> StrictRandomSearch:
    """A random search over `search_space()` that maximises validation AUC."""

    def build(hp: keras_tuner.HyperParameters):
        return taxi_model.build_model(hparams_from_trial(hp), counts)

    return StrictRandomSearch(
        build,
        objective=keras_tuner.Objective("val_auc", direction="max"),
        max_trials=max_trials,
        hyperparameters=search_space(),
        seed=seed,
        directory=directory,
        project_name="taxi_tuning",
        overwrite=True,
    )


def tuner_fn(fn_args: Any) -> Any:
    """TFX Tuner entry point; trial count, steps and batch size come from custom_config."""
    # Imported here so the search space and model stay importable without TFX.
    from tfx.components.tuner.component import TunerFnResult

    custom_config = fn_args.custom_config or {}
    seed = int(custom_config["seed"])
    batch_size = int(custom_config["batch_size"])
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    tuner = make_tuner(
        taxi_model.category_counts(tf_transform_output),
        max_trials=int(custom_config["tuner_trials"]),
        seed=seed,
        directory=fn_args.working_dir,
    )
    return TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": taxi_model.make_dataset(
                fn_args.train_files, tf_transform_output, batch_size, seed
            ),
            "validation_data": taxi_model.make_dataset(
                fn_args.eval_files, tf_transform_output, batch_size, seed, shuffle=False
            ),
            "steps_per_epoch": fn_args.train_steps,
            "validation_steps": fn_args.eval_steps,
            "epochs": 1,
            "verbose": 0,
        },
    )
