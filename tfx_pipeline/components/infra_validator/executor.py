"""The InfraValidator executor: serve the candidate in a real model server and question it.

The candidate (with its warmup file, when request_spec.make_warmup is set) and the last blessed
model are copied into a TF Serving model layout in a temporary folder and served by one server
process (model_server.py). The candidate must become AVAILABLE within the loading time, answer
every probe correctly over gRPC and REST (validation.py), and keep its p99 latency within the
budget. The verdict is written as TFX writes it (INFRA_BLESSED or INFRA_NOT_BLESSED, the `blessed`
custom property; the warm model under the blessing's stamped_model folder, `has_model` = 1) plus
`infra_validation.json` and the custom property `reason`, which the run summary prints.
"""

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Any

import tensorflow as tf
from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.proto import infra_validator_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, path_utils, proto_utils

from tfx_pipeline.components.infra_validator import model_server, requests, servers, validation

BLESSED_KEY = "blessed"
HAS_MODEL_KEY = "has_model"  # the Pusher pushes the blessing's stamped model when this is 1
REASON_KEY = "reason"
RESULT_FILE = "infra_validation.json"
DEFAULT_MAX_LOADING_SECONDS = 300
# Starting a server is retried (a port taken between choosing and binding it); a model that
# fails to load or answers wrongly is not: it would fail the same way again.
DEFAULT_START_TRIES = 3
BASELINE_SUFFIX = "-baseline"
VERSION = "1"


@dataclasses.dataclass
class Outcome:
    """What infra validation found; written to infra_validation.json."""

    server: str
    problems: list[str] = dataclasses.field(default_factory=list)
    load_seconds: float | None = None
    requests_checked: int = 0
    warmup_records: int = 0
    latency_ms: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    server_log: str = ""

    @property
    def blessed(self) -> bool:
        return not self.problems


class Executor(base_executor.BaseExecutor):
    """Blesses a model that loads, answers like the in-process call, and is fast enough."""

    def Do(  # noqa: N802 - TFX executor API
        self,
        input_dict: dict[str, list[Any]],
        output_dict: dict[str, list[Any]],
        exec_properties: dict[str, Any],
    ) -> None:
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        examples = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.EXAMPLES_KEY]
        )
        baselines = input_dict.get("baseline_model") or []
        blessing = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.BLESSING_KEY]
        )
        serving_spec = _parse(
            exec_properties,
            standard_component_specs.SERVING_SPEC_KEY,
            infra_validator_pb2.ServingSpec(),
        )
        request_spec = _parse(
            exec_properties,
            standard_component_specs.REQUEST_SPEC_KEY,
            infra_validator_pb2.RequestSpec(),
        )
        validation_spec = _parse(
            exec_properties,
            standard_component_specs.VALIDATION_SPEC_KEY,
            infra_validator_pb2.ValidationSpec(),
        )
        model_name = serving_spec.model_name or "model"

        work_dir = tempfile.mkdtemp(prefix="infra-validation-", dir=self._get_tmp_dir())
        try:
            candidate_dir = os.path.join(work_dir, "models", model_name, VERSION)
            io_utils.copy_dir(_saved_model_path(model), candidate_dir)
            served = [model_server.ServedModel(model_name, os.path.dirname(candidate_dir))]
            if baselines:
                baseline_name = model_name + BASELINE_SUFFIX
                baseline_dir = os.path.join(work_dir, "models", baseline_name, VERSION)
                io_utils.copy_dir(_saved_model_path(baselines[0]), baseline_dir)
                served.append(
                    model_server.ServedModel(baseline_name, os.path.dirname(baseline_dir))
                )
            outcome = validate(
                candidate_dir=candidate_dir,
                examples_split_dir=artifact_utils.get_split_uri(
                    [examples], request_spec.split_name or "eval"
                ),
                served=served,
                request_spec=request_spec,
                validation_spec=validation_spec,
                server_choice=exec_properties["server"],
                max_p99_increase=float(exec_properties["max_p99_increase"]),
                work_dir=work_dir,
            )
            _record(blessing, outcome, candidate_dir, request_spec.make_warmup)
            log = os.path.join(work_dir, model_server.LOG_FILE)
            if os.path.exists(log):
                io_utils.copy_file(log, os.path.join(blessing.uri, model_server.LOG_FILE))
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)


def _parse(exec_properties: dict[str, Any], key: str, message: Any) -> Any:
    if exec_properties.get(key):
        proto_utils.json_to_proto(exec_properties[key], message)
    return message


def _saved_model_path(model: Any) -> str:
    return path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))


def validate(
    candidate_dir: str,
    examples_split_dir: str,
    served: list[model_server.ServedModel],
    request_spec: infra_validator_pb2.RequestSpec,
    validation_spec: infra_validator_pb2.ValidationSpec,
    server_choice: str,
    max_p99_increase: float,
    work_dir: str,
) -> Outcome:
    """Serves `served` (the candidate first) and checks the candidate; never raises on a bad model."""
    try:
        server = servers.resolve(server_choice)
    except servers.ServerError as error:
        return Outcome(server=server_choice, problems=[str(error)])
    outcome = Outcome(server=server)
    candidate = served[0].name
    try:
        loaded = tf.saved_model.load(candidate_dir)
    except Exception as error:  # noqa: BLE001 - any failure to load is the verdict
        outcome.problems.append(f"the model cannot be loaded: {_first_line(error)}")
        return outcome
    names = list(request_spec.tensorflow_serving.signature_names) or ["serving_default"]
    missing = sorted(set(names) - set(loaded.signatures))
    if missing:
        outcome.problems.append(
            f"the model has no signature {', '.join(missing)} (it has {sorted(loaded.signatures)})"
        )
        return outcome
    signatures = {name: loaded.signatures[name] for name in names}
    try:
        records = requests.read_examples(examples_split_dir, request_spec.num_examples or 1)
        probes = requests.build_probes(signatures, records)
        expected = validation.expected_outputs(signatures, probes)
    except Exception as error:  # noqa: BLE001 - a signature the rows cannot drive is the verdict
        outcome.problems.append(f"the model cannot be called in process: {_first_line(error)}")
        return outcome
    outcome.requests_checked = len(probes)
    if request_spec.make_warmup:
        logs = requests.warmup_logs(probes, candidate)
        requests.write_warmup_file(candidate_dir, logs)
        outcome.warmup_records = len(logs)

    tries = validation_spec.num_tries or DEFAULT_START_TRIES
    loading_seconds = validation_spec.max_loading_time_seconds or DEFAULT_MAX_LOADING_SECONDS
    for attempt in range(1, tries + 1):
        running = model_server.ModelServer(server, served, work_dir)
        try:
            with running:
                outcome.load_seconds = running.wait_until_available(loading_seconds)
                outcome.problems += validation.check_answers(
                    probes, expected, running.grpc_target, running.rest_url, candidate
                )
                if not outcome.problems:
                    outcome.problems += _check_latency(
                        outcome, probes, running.grpc_target, served, max_p99_increase
                    )
        except servers.ServerError as error:
            outcome.server_log = running.log_tail()
            if isinstance(error, servers.ServerExited) and attempt < tries:
                logging.warning("Model server failed (try %d of %d): %s", attempt, tries, error)
                continue
            outcome.problems.append(str(error))
            return outcome
        outcome.server_log = running.log_tail()
        return outcome
    return outcome


def _check_latency(
    outcome: Outcome,
    probes: list[requests.Probe],
    grpc_target: str,
    served: list[model_server.ServedModel],
    max_p99_increase: float,
) -> list[str]:
    """The latency budget; an over-budget result must repeat before it counts."""
    names = [model.name for model in served]
    problem = None
    for _ in range(2):
        latency = validation.measure_latency(probes, grpc_target, names)
        outcome.latency_ms = {
            ("candidate" if name == names[0] else "baseline"): dataclasses.asdict(value)
            for name, value in latency.items()
        }
        baseline = latency.get(names[1]) if len(names) > 1 else None
        problem = validation.latency_problem(latency[names[0]], baseline, max_p99_increase)
        if problem is None:
            return []
        logging.warning("Infra validation latency over budget, measuring again: %s", problem)
    return [problem]


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _record(blessing: Any, outcome: Outcome, candidate_dir: str, make_warmup: bool) -> None:
    """Writes the verdict where TFX's Pusher and our run summary look for it."""
    result = dataclasses.asdict(outcome)
    result["blessed"] = outcome.blessed
    if outcome.blessed:
        del result["server_log"]  # the whole log is beside this file
    io_utils.write_string_file(
        os.path.join(blessing.uri, RESULT_FILE), json.dumps(result, indent=2, sort_keys=True)
    )
    if outcome.blessed:
        logging.info("Model passed infra validation on %s: %s", outcome.server, result)
        io_utils.write_string_file(os.path.join(blessing.uri, "INFRA_BLESSED"), "")
        blessing.set_int_custom_property(BLESSED_KEY, 1)
        if make_warmup:
            stamped = path_utils.stamped_model_path(blessing.uri)
            if fileio.exists(stamped):
                fileio.rmtree(stamped)
            io_utils.copy_dir(candidate_dir, stamped)
            blessing.set_int_custom_property(HAS_MODEL_KEY, 1)
    else:
        logging.error("Model failed infra validation: %s", "; ".join(outcome.problems))
        if outcome.server_log:
            logging.error("Model server log (last lines):\n%s", outcome.server_log)
        io_utils.write_string_file(os.path.join(blessing.uri, "INFRA_NOT_BLESSED"), "")
        blessing.set_int_custom_property(BLESSED_KEY, 0)
        blessing.set_string_custom_property(REASON_KEY, "; ".join(outcome.problems))
    candidate = outcome.latency_ms.get("candidate")
    if candidate:
        blessing.set_float_custom_property("p99_ms", candidate["p99_ms"])
    baseline = outcome.latency_ms.get("baseline")
    if baseline:
        blessing.set_float_custom_property("baseline_p99_ms", baseline["p99_ms"])
