"""Which models to serve: from --model_name/--model_base_path or a TF Serving models.config file.

The config file is TF Serving's own ModelServerConfig text proto, parsed with TF Serving's proto
(tensorflow-serving-api), so one file drives both this server and `tensorflow_model_server`.
"""

import os
import re

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.versions import ModelSpec, VersionPolicy

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ConfigError(ValueError):
    """A model config that cannot be served; the message names every problem."""


def spec_from_proto(config: model_server_config_pb2.ModelConfig) -> ModelSpec:
    policy = config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        version_policy, latest, specific = VersionPolicy.ALL, 1, ()
    elif kind == "specific":
        version_policy, latest, specific = (
            VersionPolicy.SPECIFIC,
            1,
            tuple(policy.specific.versions),
        )
    else:
        version_policy = VersionPolicy.LATEST
        latest = (
            policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
        )
        specific = ()
    return ModelSpec(
        name=config.name,
        base_path=config.base_path,
        policy=version_policy,
        latest_count=latest,
        specific_versions=specific,
        labels=tuple(sorted(config.version_labels.items())),
        log_sampling_rate=(
            config.logging_config.sampling_config.sampling_rate
            if config.HasField("logging_config")
            else None
        ),
        log_filename_prefix=config.logging_config.log_collector_config.filename_prefix,
    )


def validate(specs: list[ModelSpec]) -> list[ModelSpec]:
    """Checks names, paths, policies and labels; raises ConfigError listing every problem."""
    problems = []
    seen = set()
    for spec in specs:
        if not MODEL_NAME.match(spec.name):
            problems.append(
                f"model name {spec.name!r} must be letters, digits, '_', '.', '-' (no slashes)"
            )
        if spec.name in seen:
            problems.append(f"model name {spec.name!r} is configured twice")
        seen.add(spec.name)
        if not spec.base_path:
            problems.append(f"model {spec.name!r} has no base_path")
        if spec.policy is VersionPolicy.SPECIFIC and not spec.specific_versions:
            problems.append(f"model {spec.name!r}: the specific version policy lists no versions")
        if spec.latest_count < 1:
            problems.append(f"model {spec.name!r}: latest num_versions must be at least 1")
        if spec.log_sampling_rate is not None and not 0.0 <= spec.log_sampling_rate <= 1.0:
            problems.append(
                f"model {spec.name!r}: logging_config sampling_rate must be within [0, 1], "
                f"got {spec.log_sampling_rate}"
            )
        for label, version in spec.labels:
            if not re.match(r"^[A-Za-z0-9_-]+$", label) or label[0].isdigit():
                problems.append(f"model {spec.name!r}: label {label!r} is not a valid label name")
            if spec.policy is VersionPolicy.SPECIFIC and version not in spec.specific_versions:
                problems.append(
                    f"model {spec.name!r}: label {label!r} points to version {version}, "
                    "which the specific version policy does not serve"
                )
    if not specs:
        problems.append("no models configured")
    if problems:
        raise ConfigError("; ".join(problems))
    return specs


def load_config_file(path: str) -> list[ModelSpec]:
    """Reads a ModelServerConfig text proto (TF Serving's --model_config_file)."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError as error:
        raise ConfigError(f"cannot read model config file {path}: {error.strerror}") from None
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ConfigError(
            f"model config file {path} is not a ModelServerConfig text proto: {error}"
        ) from None
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"model config file {path} has no model_config_list")
    specs = []
    for model in config.model_config_list.config:
        if model.model_platform not in ("", "tensorflow"):
            raise ConfigError(
                f"model {model.name!r}: model_platform {model.model_platform!r} is not supported "
                "(only 'tensorflow')"
            )
        specs.append(spec_from_proto(model))
    return validate(specs)


def single_model(name: str, base_path: str) -> list[ModelSpec]:
    """The --model_name/--model_base_path form: one model, latest version."""
    return validate([ModelSpec(name=name, base_path=os.path.abspath(base_path))])


def to_config_text(specs: list[ModelSpec]) -> str:
    """A models.config text proto for `specs`, readable by tensorflow_model_server and this server."""
    config = model_server_config_pb2.ModelServerConfig()
    for spec in specs:
        model = config.model_config_list.config.add()
        model.name = spec.name
        model.base_path = spec.base_path
        model.model_platform = "tensorflow"
        if spec.policy is VersionPolicy.ALL:
            model.model_version_policy.all.SetInParent()
        elif spec.policy is VersionPolicy.SPECIFIC:
            model.model_version_policy.specific.versions.extend(spec.specific_versions)
        else:
            model.model_version_policy.latest.num_versions = spec.latest_count
        for label, version in spec.labels:
            model.version_labels[label] = version
        if spec.log_sampling_rate is not None:
            logging_config = model.logging_config
            logging_config.sampling_config.sampling_rate = spec.log_sampling_rate
            logging_config.log_collector_config.filename_prefix = spec.log_filename_prefix
    return text_format.MessageToString(config)
