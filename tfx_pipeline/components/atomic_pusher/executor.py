"""The Pusher executor: TFX's stock Pusher component, pushing through `push.py`.

TFX's filesystem Pusher copies files straight into `<base>/<version>/` (saved_model.pb last), so
a model server polling the base path can see a version folder before it is complete. This one
pushes the infra-validated copy of the model (it carries TF Serving's warmup requests),
atomically on local filesystems, never pushes a model identical to a version already in the base
path (a re-evaluated, unchanged model) or to a rolled-back one, and never reuses or goes below an
existing version number.
"""

import os
import time
from typing import Any

from absl import logging
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, path_utils, proto_utils

from tfx_pipeline.components.atomic_pusher import push

# The InfraBlessing property TFX's InfraValidator sets when the blessing holds the warm model.
INFRA_HAS_MODEL_KEY = "has_model"


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
        if "://" in base_directory:
            # Remote filesystems (GCS) have no atomic rename: TFX's own push, which writes
            # saved_model.pb last, unless the very same model is already there.
            version = push.identical_version(push.model_digest(model_path), base_directory)
            if version is None:
                super().Do(input_dict, output_dict, exec_properties)
                return
            logging.info("Model is identical to the served version %s; nothing copied.", version)
            self._MarkPushed(
                model_push,
                pushed_destination=os.path.join(base_directory, str(version)),
                pushed_version=str(version),
            )
            return
        try:
            version, copied = push.push_atomically(model_path, base_directory, time.time())
        except push.RolledBackModelError as error:
            logging.warning("%s", error)
            self._MarkNotPushed(model_push)
            return
        serving_path = os.path.join(base_directory, str(version))
        if copied:
            logging.info("Model pushed atomically to %s.", serving_path)
        else:
            logging.info(
                "Model is identical to the served version %s; nothing copied.", serving_path
            )
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=str(version))
        if not fileio.exists(serving_path):
            raise RuntimeError(f"push to {serving_path} did not leave a version folder")
