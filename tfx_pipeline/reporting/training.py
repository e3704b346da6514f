"""The Trainer's training curve and the Tuner's trials, read back from their artifacts.

TFX-free and TensorFlow-free: both are small JSON files.

- `read_training_history(model_run_uri)`: the Trainer's `model_run` output holds
  `training_history.json`, written by models/model.py (`write_training_history`, whose module
  docstring gives the format): per epoch, the training steps done by its end and every Keras
  metric (`loss`, `auc`, `accuracy`, and `val_` ones on the eval split).
- `read_trials(tuner_results_uri)`: the Tuner's `tuner_results` output holds TFX's
  `tuner_results.json`, a list with one row per completed trial: `trial_id`, `score` (the
  objective, validation AUC here) and the trial's hyperparameter values. TFX writes completed
  trials only, best first, and no status; a failed trial is not there.
"""

import dataclasses
import json
import math
import os

TRAINING_HISTORY_FILE = "training_history.json"
TUNER_RESULTS_FILE = "tuner_results.json"
# The columns of a tuner_results.json row that are not hyperparameters.
TRIAL_ID = "trial_id"
SCORE = "score"
STATUS = "status"


@dataclasses.dataclass(frozen=True)
class TrainingHistory:
    """One entry per epoch: its number (from 1), the steps done by its end, every metric."""

    epochs: list[int]
    steps: list[int]
    metrics: dict[str, list[float]]  # NaN where the Trainer recorded no finite value
    validation_steps: int | None = None  # eval batches behind each val_ value


@dataclasses.dataclass(frozen=True)
class Trial:
    """One trial of the hyperparameter search."""

    number: int  # Keras Tuner's trial id, which counts trials from 0 in the order they ran
    values: dict[str, object]  # hyperparameter name -> value
    score: float | None  # the search objective (validation AUC); None if not recorded
    status: str | None = None  # TFX records completed trials only, without a status


def _float(value: object) -> float:
    return math.nan if value is None else float(value)


def read_training_history(model_run_uri: str) -> TrainingHistory | None:
    """The curve the Trainer recorded; None for a model trained before curves were recorded.

    Raises:
      ValueError: the file is there but is not a training history (names the file).
    """
    path = os.path.join(model_run_uri, TRAINING_HISTORY_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        data = json.load(handle)
    try:
        history = TrainingHistory(
            epochs=[int(epoch) for epoch in data["epochs"]],
            steps=[int(step) for step in data["steps"]],
            metrics={
                str(name): [_float(value) for value in values]
                for name, values in data["metrics"].items()
            },
            validation_steps=data.get("validation_steps"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"{path} is not a training history: {error!r}") from error
    lengths = {len(history.steps), *(len(values) for values in history.metrics.values())}
    if lengths != {len(history.epochs)}:
        raise ValueError(
            f"{path} is not a training history: {len(history.epochs)} epochs but lists of "
            f"lengths {sorted(lengths)}"
        )
    return history


def _trial_number(trial_id: object, position: int) -> int:
    text = str(trial_id)
    return int(text) if text.isdigit() else position


def read_trials(tuner_results_uri: str) -> list[Trial]:
    """Every trial the Tuner recorded, in the order they ran; [] when it recorded none.

    Raises:
      ValueError: the file is there but is not TFX's list of trials (names the file).
    """
    path = os.path.join(tuner_results_uri, TUNER_RESULTS_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        rows = json.load(handle)
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"{path} is not a list of trials")
    trials = [
        Trial(
            number=_trial_number(row.get(TRIAL_ID), position),
            values={
                name: value for name, value in row.items() if name not in (TRIAL_ID, SCORE, STATUS)
            },
            score=None if row.get(SCORE) is None else float(row[SCORE]),
            status=row.get(STATUS),
        )
        for position, row in enumerate(rows)
    ]
    return sorted(trials, key=lambda trial: trial.number)
