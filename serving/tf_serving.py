"""Configs and command lines for running the real tensorflow_model_server on the push directory.

    python -m serving.tf_serving [--serving_dir outputs/serving]

Writes, into the serving dir: models.config (host paths, for tensorflow_model_server and for
`python -m serving --model_config_file`), models.docker.config (the same with the container path
/models), monitoring.config (Prometheus on) and batching.config, then prints both command lines.
"""

import argparse
import os
import shlex
import sys

from serving import config as config_lib
from serving.versions import ModelSpec, version_folders

# TF Serving release built against the TensorFlow we pin (tensorflow==2.16.2).
TF_SERVING_VERSION = "2.16.1"
DOCKER_IMAGE = f"tensorflow/serving:{TF_SERVING_VERSION}"
CONTAINER_ROOT = "/models"
MONITORING_CONFIG = (
    'prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n'
)
BATCHING_CONFIG = (
    "max_batch_size { value: 64 }\n"
    "batch_timeout_micros { value: 2000 }\n"
    "max_enqueued_batches { value: 100 }\n"
    "num_batch_threads { value: 2 }\n"
)


def discover_models(serving_dir: str) -> list[str]:
    """Sub-folders of `serving_dir` that hold at least one integer version folder."""
    if not os.path.isdir(serving_dir):
        raise ValueError(
            f"serving dir {serving_dir} does not exist; run the pipeline first (make run)"
        )
    names = sorted(
        entry.name
        for entry in os.scandir(serving_dir)
        if entry.is_dir() and version_folders(entry.path)
    )
    if not names:
        raise ValueError(
            f"no model under {serving_dir} has a version folder yet "
            "(expected <serving_dir>/<model>/<integer version>/saved_model.pb)"
        )
    return names


def write_configs(serving_dir: str, names: list[str]) -> dict[str, str]:
    serving_dir = os.path.abspath(serving_dir)
    host_specs = [ModelSpec(name=n, base_path=os.path.join(serving_dir, n)) for n in names]
    docker_specs = [ModelSpec(name=n, base_path=f"{CONTAINER_ROOT}/{n}") for n in names]
    files = {
        "models.config": config_lib.to_config_text(config_lib.validate(host_specs)),
        "models.docker.config": config_lib.to_config_text(config_lib.validate(docker_specs)),
        "monitoring.config": MONITORING_CONFIG,
        "batching.config": BATCHING_CONFIG,
    }
    paths = {}
    for name, text in files.items():
        path = os.path.join(serving_dir, name)
        with open(path + ".tmp", "w") as handle:
            handle.write(text)
        os.replace(path + ".tmp", path)
        paths[name] = path
    return paths


def command_lines(serving_dir: str) -> tuple[str, str]:
    serving_dir = os.path.abspath(serving_dir)
    binary = [
        "tensorflow_model_server",
        "--port=8500",
        "--rest_api_port=8501",
        f"--model_config_file={os.path.join(serving_dir, 'models.config')}",
        f"--monitoring_config_file={os.path.join(serving_dir, 'monitoring.config')}",
        "--file_system_poll_wait_seconds=1",
    ]
    docker = [
        "docker", "run", "--rm", "-p", "8500:8500", "-p", "8501:8501",
        "-v", f"{serving_dir}:{CONTAINER_ROOT}:ro",
        DOCKER_IMAGE,
        f"--model_config_file={CONTAINER_ROOT}/models.docker.config",
        f"--monitoring_config_file={CONTAINER_ROOT}/monitoring.config",
        "--file_system_poll_wait_seconds=1",
    ]  # fmt: skip
    return shlex.join(binary), shlex.join(docker)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.tf_serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--serving_dir",
        default=os.path.join("outputs", "serving"),
        help="the Pusher's serving root, <serving_dir>/<model>/<version>/ (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        names = discover_models(args.serving_dir)
        paths = write_configs(args.serving_dir, names)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    binary, docker = command_lines(args.serving_dir)
    print(f"Models: {', '.join(names)}")
    for path in paths.values():
        print(f"Wrote {path}")
    print(
        f"\nReal TF Serving {TF_SERVING_VERSION} (matches TensorFlow 2.16), installed binary:\n  {binary}"
    )
    print(f"\nOr with Docker:\n  {docker}")
    print(
        f"\nThis project's server on the same config:\n  python -m serving --model_config_file={paths['models.config']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
