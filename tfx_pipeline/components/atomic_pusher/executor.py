"""The Pusher executor: TFX's Pusher executor, pushing through `push.py`, with a model card.

TFX's filesystem Pusher copies files straight into `<base>/<version>/` (saved_model.pb last), so
a model server polling the base path can see a version folder before it is complete. This one
pushes the infra-validated copy of the model (it carries TF Serving's warmup requests),
atomically on local filesystems, never pushes a model identical to a version already in the base
path (a re-evaluated, unchanged model) or to a rolled-back one, and never reuses or goes below an
existing version number. Each new version carries its model card (model_card.py) and the
curated schema (`push.SERVED_SCHEMA_FILE`, what the server checks request rows against) in
`assets.extra/`, written before the version becomes visible (locally) or loadable (remotely).
"""

import os
import time
from typing import Any

import tensorflow as tf
from absl import logging
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, path_utils, proto_utils

from tfx_pipeline.components.atomic_pusher import model_card, push

# The InfraBlessing property TFX's InfraValidator sets when the blessing holds the warm model.
INFRA_HAS_MODEL_KEY = "has_model"
# What the model card reads: the inputs and settings component.py adds to TFX's Pusher spec.
EVALUATION_KEY = "evaluation"
HYPERPARAMETERS_KEY = "hyperparameters"
STATISTICS_KEY = "statistics"
SCHEMA_KEY = "schema"
EXAMPLES_KEY = "examples"
# Not "pipeline_name": TFX's Airflow launcher reserves that execution property.
PIPELINE_NAME_KEY = "card_pipeline_name"
DATA_ROOT_KEY = "data_root"
SPAN_PROPERTY = "span"  # ExampleGen records the span as a custom property of its Examples


class Executor(pusher_executor.Executor):
    """TFX Pusher: atomic, duplicate-free pushes locally; duplicate-free on remote filesystems."""

    def GetModelPath(self, input_dict: dict[str, list[Any]]) -> str:  # noqa: N802 - TFX API
        """The infra-validated copy (with its warmup requests) when there is one, else the model.

        TFX's Pusher reads the infra blessing's model only when it has no `model` input; ours
        keeps that input, so MLMD links every pushed version to the Trainer's model.
        """
        infra_blessings = input_dict.get(standard_component_specs.INFRA_BLESSING_KEY)
        if infra_blessings:
            blessing = artifact_utils.get_single_instance(infra_blessings)
            if blessing.get_int_custom_property(INFRA_HAS_MODEL_KEY) == 1:
                return path_utils.stamped_model_path(blessing.uri)
        return super().GetModelPath(input_dict)

    def Do(  # noqa: N802 - TFX executor API
        self,
        input_dict: dict[str, list[Any]],
        output_dict: dict[str, list[Any]],
        exec_properties: dict[str, Any],
    ) -> None:
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        base_directory = destination.filesystem.base_directory
        now = time.time()

        def version_files(version: int) -> dict[str, bytes]:
            return {
                **self.model_card_files(
                    input_dict, exec_properties, base_directory, version, pushed_at=now
                ),
                **schema_files(input_dict),
            }

        if "://" in base_directory:
            # Remote filesystems (GCS) have no atomic rename: files are copied with
            # saved_model.pb last, the model card before it, unless the very same model is
            # already there.
            version, copied = push.push_by_copy(model_path, base_directory, now, version_files)
        else:
            try:
                version, copied = push.push_atomically(
                    model_path, base_directory, now, version_files
                )
            except push.RolledBackModelError as error:
                logging.warning("%s", error)
                self._MarkNotPushed(model_push)
                return
        serving_path = os.path.join(base_directory, str(version))
        if not fileio.exists(serving_path):
            raise RuntimeError(f"push to {serving_path} did not leave a version folder")
        if copied:
            logging.info("Model pushed to %s.", serving_path)
        else:
            # The version keeps the card of the push that made it.
            logging.info(
                "Model is identical to the served version %s; nothing copied.", serving_path
            )
        # The PushedModel artifact archives the version as served, its model card included.
        io_utils.copy_dir(serving_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=str(version))

    def model_card_files(
        self,
        input_dict: dict[str, list[Any]],
        exec_properties: dict[str, Any],
        base_directory: str,
        version: int,
        pushed_at: float,
    ) -> dict[str, bytes]:
        """The model card of a new version, as files; {} (pushed without a card) if it fails.

        Missing or unreadable inputs become "not recorded" parts of the card, logged here. Any
        other failure is a fault of the card's code, not of the model, which is blessed and
        validated: it is logged with its traceback and the version is pushed without a card.
        """
        context = self._context
        facts = model_card.PushFacts(
            model_name=os.path.basename(base_directory.rstrip("/")),
            version=version,
            pushed_at=pushed_at,
            serving_path=os.path.join(base_directory, str(version)),
            pipeline_name=exec_properties.get(PIPELINE_NAME_KEY)
            or (context.pipeline_info.id if context and context.pipeline_info else None),
            run_id=context.pipeline_run_id if context else None,
            data_root=exec_properties.get(DATA_ROOT_KEY),
            frameworks=model_card.framework_versions(),
        )
        inputs = model_card.CardInputs(
            model=_single(input_dict, standard_component_specs.MODEL_KEY),
            model_blessing=_single(input_dict, standard_component_specs.MODEL_BLESSING_KEY),
            infra_blessing=_single(input_dict, standard_component_specs.INFRA_BLESSING_KEY),
            examples=tuple(_ref(a) for a in input_dict.get(EXAMPLES_KEY) or []),
            statistics=_single(input_dict, STATISTICS_KEY),
            schema=_single(input_dict, SCHEMA_KEY),
            hyperparameters=_single(input_dict, HYPERPARAMETERS_KEY),
            evaluation=_single(input_dict, EVALUATION_KEY),
        )
        try:
            card = model_card.build_card(facts, inputs)
            files = model_card.card_files(card)
        except Exception:  # noqa: BLE001 - the card documents the push; it must not stop it
            logging.exception(
                "The model card of version %s could not be built; the version is pushed "
                "without one.",
                version,
            )
            return {}
        for part in card["not_recorded"]:
            logging.warning(
                "Model card of version %s: %s not recorded: %s",
                version,
                part["part"],
                part["reason"],
            )
        logging.info("Model card of version %s: %s", version, ", ".join(model_card.CARD_FILES))
        return files


def schema_files(input_dict: dict[str, list[Any]]) -> dict[str, bytes]:
    """The Schema input's text file, as the version's SERVED_SCHEMA_FILE; {} without one.

    The file is copied as it is (the curated schema keeps its comments). A version without it
    is served unchecked, so a missing or unreadable schema is logged, and the push goes on.
    """
    schema = _single(input_dict, SCHEMA_KEY)
    if schema is None:
        logging.warning("The Pusher was given no schema: the version's requests are not checked")
        return {}
    path = os.path.join(schema.uri, model_card.SCHEMA_FILE)
    try:
        with fileio.open(path, "rb") as handle:
            return {push.SERVED_SCHEMA_FILE: handle.read()}
    except (OSError, tf.errors.OpError) as error:
        logging.warning(
            "Cannot read the schema %s (%s): the version is pushed without %s, so its requests "
            "are not checked",
            path,
            error,
            push.SERVED_SCHEMA_FILE,
        )
        return {}


def _ref(artifact: Any) -> model_card.ArtifactRef:
    span = (
        artifact.get_int_custom_property(SPAN_PROPERTY)
        if artifact.has_custom_property(SPAN_PROPERTY)
        else None
    )
    return model_card.ArtifactRef(id=artifact.id or None, uri=artifact.uri, span=span)


def _single(input_dict: dict[str, list[Any]], key: str) -> model_card.ArtifactRef | None:
    artifacts = input_dict.get(key) or []
    return _ref(artifacts[0]) if artifacts else None
