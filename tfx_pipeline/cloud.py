"""Google Cloud settings (Dataflow, Vertex Training, Vertex endpoint): typed, validated, offline."""

import dataclasses
import re

from tfx_pipeline.problems import raise_if_any

# Formats Google Cloud documents for these names; checked here so a typo fails before compiling.
PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
REGION = re.compile(r"[a-z]+-[a-z]+[0-9]+")
GCS_PATH = re.compile(r"gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/[^\s]*)?")
MACHINE_TYPE = re.compile(r"[a-z][a-z0-9]*-[a-z0-9]+(-[a-z0-9]+)*")
# registry/path[:tag][@sha256:digest]; e.g. us-central1-docker.pkg.dev/p/repo/taxi:1.0
IMAGE = re.compile(
    r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?"
)
SERVICE_ACCOUNT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.iam\.gserviceaccount\.com")
ENDPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

# TF Serving based prediction image of Vertex AI; 2.15 is the newest the pinned SDK lists
# (google.cloud.aiplatform.constants.prediction). Override where a newer one is offered.
DEFAULT_SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"


# Each format with an example for the error message.
FORMATS = {
    "project": (PROJECT_ID, "my-project-123"),
    "region": (REGION, "us-central1"),
    "gcs_path": (GCS_PATH, "gs://my-bucket/tmp"),
    "machine_type": (MACHINE_TYPE, "n1-standard-4"),
    "image": (IMAGE, "us-docker.pkg.dev/my-project-123/ml/taxi-pipeline:1"),
    "service_account": (SERVICE_ACCOUNT, "runner@my-project-123.iam.gserviceaccount.com"),
    "endpoint_name": (ENDPOINT_NAME, "taxi-endpoint"),
}


def invalid(label: str, value: str | None, kind: str) -> list[str]:
    """A message when `value` is set and breaks the format `kind` (a key of FORMATS)."""
    pattern, example = FORMATS[kind]
    if value is None or pattern.fullmatch(value):
        return []
    return [f"{label}: {value!r} is not valid (expected something like {example})"]


def invalid_fields(settings: object, **kinds: str) -> list[str]:
    """Messages for the attributes of `settings`, named with their format, that break it."""
    return [
        message
        for field, kind in kinds.items()
        for message in invalid(field, getattr(settings, field), kind)
    ]


@dataclasses.dataclass(frozen=True)
class DataflowSettings:
    """Where and how the Beam-based components (ExampleGen, StatisticsGen, Transform,
    Evaluator) run on Dataflow.

    Workers get the project's code either from a container image (`worker_image`: the pipeline
    image, which has the pinned stack and our packages installed) or from a `setup_file` that
    Dataflow pip-installs on each worker at start-up. Exactly one of them is required.
    """

    project: str
    region: str
    temp_location: str
    machine_type: str = "n1-standard-4"
    max_num_workers: int = 10
    disk_size_gb: int | None = None
    worker_image: str | None = None
    setup_file: str | None = None
    service_account: str | None = None
    network: str | None = None
    subnetwork: str | None = None
    use_public_ips: bool = True

    def __post_init__(self) -> None:
        problems = invalid_fields(
            self,
            project="project",
            region="region",
            temp_location="gcs_path",
            machine_type="machine_type",
            worker_image="image",
            service_account="service_account",
        )
        if self.max_num_workers < 1:
            problems.append(f"max_num_workers must be at least 1, got {self.max_num_workers}")
        if self.disk_size_gb is not None and self.disk_size_gb < 10:
            problems.append(f"disk_size_gb must be at least 10, got {self.disk_size_gb}")
        if (self.worker_image is None) == (self.setup_file is None):
            problems.append(
                "give exactly one of worker_image (a container with the project installed) "
                "and setup_file (Dataflow pip-installs the project on each worker)"
            )
        raise_if_any(problems, "invalid Dataflow settings")

    def beam_pipeline_args(self) -> tuple[str, ...]:
        """The Beam flags that send each Beam-based component to Dataflow."""
        args = [
            "--runner=DataflowRunner",
            f"--project={self.project}",
            f"--region={self.region}",
            f"--temp_location={self.temp_location}",
            f"--machine_type={self.machine_type}",
            f"--max_num_workers={self.max_num_workers}",
            "--autoscaling_algorithm=THROUGHPUT_BASED",
        ]
        if self.disk_size_gb is not None:
            args.append(f"--disk_size_gb={self.disk_size_gb}")
        if self.worker_image:
            # Custom SDK containers need Runner v2; the image carries the exact pinned stack.
            args += [f"--sdk_container_image={self.worker_image}", "--experiments=use_runner_v2"]
        if self.setup_file:
            args.append(f"--setup_file={self.setup_file}")
        if self.service_account:
            args.append(f"--service_account_email={self.service_account}")
        if self.network:
            args.append(f"--network={self.network}")
        if self.subnetwork:
            args.append(f"--subnetwork={self.subnetwork}")
        if not self.use_public_ips:
            args.append("--no_use_public_ips")
        return tuple(args)


@dataclasses.dataclass(frozen=True)
class VertexTraining:
    """Runs the Tuner and the Trainer as Vertex AI custom jobs in the pipeline image."""

    project: str
    region: str
    image: str
    machine_type: str = "n1-standard-4"
    service_account: str | None = None

    def __post_init__(self) -> None:
        problems = invalid_fields(
            self,
            project="project",
            region="region",
            image="image",
            machine_type="machine_type",
            service_account="service_account",
        )
        raise_if_any(problems, "invalid Vertex training settings")

    def custom_job_spec(self) -> dict[str, object]:
        """A Vertex CustomJob spec (as TFX's google_cloud_ai_platform Trainer/Tuner take it)."""
        spec: dict[str, object] = {
            "project": self.project,
            "worker_pool_specs": [
                {
                    "machine_spec": {"machine_type": self.machine_type},
                    "replica_count": 1,
                    "container_spec": {"image_uri": self.image},
                }
            ],
        }
        if self.service_account:
            spec["service_account"] = self.service_account
        return spec


@dataclasses.dataclass(frozen=True)
class VertexEndpoint:
    """Deploys each blessed model to a Vertex AI endpoint served by a TF Serving based image."""

    project: str
    region: str
    endpoint_name: str
    serving_image: str = DEFAULT_SERVING_IMAGE
    machine_type: str = "n1-standard-2"
    min_replicas: int = 1
    max_replicas: int = 1

    def __post_init__(self) -> None:
        problems = invalid_fields(
            self,
            project="project",
            region="region",
            endpoint_name="endpoint_name",
            serving_image="image",
            machine_type="machine_type",
        )
        if not 1 <= self.min_replicas <= self.max_replicas:
            problems.append(
                f"need 1 <= min_replicas <= max_replicas, got {self.min_replicas} and "
                f"{self.max_replicas}"
            )
        raise_if_any(problems, "invalid Vertex endpoint settings")

    def serving_args(self) -> dict[str, object]:
        """`ai_platform_serving_args` of TFX's google_cloud_ai_platform Pusher."""
        return {
            "project_id": self.project,
            "endpoint_name": self.endpoint_name,
            "machine_type": self.machine_type,
            "min_replica_count": self.min_replicas,
            "max_replica_count": self.max_replicas,
        }
