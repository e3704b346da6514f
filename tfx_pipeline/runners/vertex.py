"""The Vertex AI runner: its flags, their mapping onto PipelineConfig, compiling and submitting.

`vertex_runner.py` is the command. The pipeline is compiled with TFX's KubeflowV2DagRunner into
a Vertex pipeline JSON (offline) and submitted with google-cloud-aiplatform's PipelineJob.
Every malformed or missing setting is reported at once, before anything is compiled or sent.
"""

import argparse
import json
import os
import pathlib
import re
import warnings

from tfx_pipeline import cloud, layout
from tfx_pipeline import config as config_lib
from tfx_pipeline.problems import EXIT_USAGE, raise_if_any
from tfx_pipeline.runners import settings

DEFAULT_OUTPUT = layout.DEFAULT_OUTPUT_DIR / "vertex" / "taxi_pipeline.json"
# Where the Dockerfile puts the curated schema inside the pipeline image.
IMAGE_SCHEMA_PATH = "/pipeline/data/schema/schema.pbtxt"
# Unix cron, five fields, optionally prefixed by a time zone: "TZ=Europe/Berlin 0 3 * * 1".
CRON = re.compile(r"(TZ=[A-Za-z_+-]+(/[A-Za-z0-9_+-]+)* )?([0-9*/,A-Za-z-]+ ){4}[0-9*/,A-Za-z-]+")
EXIT_OK = 0
EXIT_SUBMIT_FAILED = 1

EPILOG = f"""\
exit status:
  {EXIT_OK}  compiled (and submitted or scheduled, unless --compile-only)
  {EXIT_SUBMIT_FAILED}  submitting to Vertex AI failed (the error is printed)
  {EXIT_USAGE}  bad flags or settings; nothing was compiled or sent
"""


def build_parser(description: str) -> argparse.ArgumentParser:
    """Every flag of `vertex_runner.py`."""
    parser = argparse.ArgumentParser(
        description=description,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_argument_group("where things live")
    where.add_argument("--project", help="Google Cloud project id (required to submit)")
    where.add_argument("--region", help="Vertex AI and Dataflow region, e.g. us-central1")
    where.add_argument(
        "--pipeline-root",
        required=True,
        help="artifact root, gs://bucket/path (a local path is accepted with --compile-only)",
    )
    where.add_argument(
        "--data-root",
        required=True,
        help="folder of span-N/ CSV folders the components read, e.g. gs://bucket/taxi",
    )
    where.add_argument(
        "--serving-dir",
        required=True,
        help="TF Serving model root the Pusher writes <serving-dir>/<model-name>/<version>/ to",
    )
    where.add_argument(
        "--image",
        required=True,
        help="pipeline image every component runs in (built from the Dockerfile), e.g. "
        "us-central1-docker.pkg.dev/PROJECT/REPO/taxi-pipeline:TAG",
    )
    where.add_argument(
        "--schema",
        default=IMAGE_SCHEMA_PATH,
        help="curated schema as the components see it (default: the copy in the image, "
        "%(default)s)",
    )
    where.add_argument(
        "--anomaly-policy",
        type=pathlib.Path,
        default=layout.ANOMALY_POLICY,
        help="data policy file, read now and compiled into the pipeline (default: %(default)s)",
    )
    settings.add_name_arguments(
        where, pipeline_name=config_lib.VERTEX_PIPELINE_NAME, help_="pipeline name in Vertex"
    )
    where.add_argument(
        "--service-account",
        help="service account the pipeline job runs as (default: the Compute Engine default)",
    )

    training = settings.add_training_arguments(parser)
    training.add_argument(
        "--no-tune",
        action="store_true",
        help="reuse the latest searched hyperparameters instead of searching in every run",
    )
    training.add_argument(
        "--vertex-training",
        action="store_true",
        help="run Tuner and Trainer as Vertex AI custom jobs in the pipeline image",
    )
    training.add_argument(
        "--training-machine-type",
        default="n1-standard-4",
        help="machine of the custom jobs (default: %(default)s)",
    )

    dataflow = parser.add_argument_group(
        "Dataflow (Beam-based components: ExampleGen, StatisticsGen, Transform, Evaluator)"
    )
    dataflow.add_argument(
        "--dataflow",
        action="store_true",
        help="run Beam on Dataflow; without it Beam runs inside each component's container",
    )
    dataflow.add_argument("--dataflow-temp-location", help="gs:// staging and temp folder")
    dataflow.add_argument(
        "--dataflow-machine-type",
        default="n1-standard-4",
        help="worker machine (default: %(default)s)",
    )
    dataflow.add_argument(
        "--dataflow-max-workers",
        type=settings.positive_int,
        default=10,
        help="autoscaling ceiling per Beam job (default: %(default)s)",
    )
    dataflow.add_argument(
        "--dataflow-disk-size-gb",
        type=settings.positive_int,
        help="worker disk (default: Dataflow's)",
    )
    dataflow.add_argument(
        "--dataflow-setup-file",
        help="ship our code to workers with this setup.py instead of the pipeline image "
        "(default: workers run the pipeline image as a custom SDK container)",
    )
    dataflow.add_argument("--dataflow-service-account", help="worker service account")
    dataflow.add_argument("--dataflow-subnetwork", help="e.g. regions/us-central1/subnetworks/x")
    dataflow.add_argument(
        "--dataflow-no-public-ips", action="store_true", help="workers get private IPs only"
    )

    endpoint = parser.add_argument_group("Vertex AI endpoint (optional second push)")
    endpoint.add_argument(
        "--endpoint-name", help="also deploy each blessed model to this Vertex AI endpoint"
    )
    endpoint.add_argument(
        "--endpoint-serving-image",
        help="TF Serving based prediction image (default: Vertex's prebuilt TF 2.15 CPU image)",
    )
    endpoint.add_argument(
        "--endpoint-machine-type",
        default="n1-standard-2",
        help="serving machine (default: %(default)s)",
    )

    run = parser.add_argument_group("what to do")
    run.add_argument(
        "--output",
        type=pathlib.Path,
        default=DEFAULT_OUTPUT,
        help="where the compiled pipeline JSON goes (default: %(default)s)",
    )
    run.add_argument(
        "--compile-only", action="store_true", help="write the pipeline JSON; submit nothing"
    )
    run.add_argument(
        "--schedule",
        metavar="CRON",
        help='create a schedule instead of one run, e.g. "TZ=Etc/UTC 0 3 * * *"',
    )
    run.add_argument("--no-cache", action="store_true", help="disable Vertex's step caching")
    return parser


def _check_flags(args: argparse.Namespace) -> list[str]:
    """Problems with the flags themselves, before any settings object is built."""
    problems: list[str] = []
    submitting = not args.compile_only
    if submitting or args.dataflow or args.vertex_training or args.endpoint_name:
        for flag in ("project", "region"):
            if not getattr(args, flag):
                problems.append(f"--{flag} is required to submit, or for Dataflow/Vertex services")
    if submitting:
        for flag in ("pipeline_root", "data_root", "serving_dir"):
            if not str(getattr(args, flag)).startswith("gs://"):
                problems.append(
                    f"--{flag.replace('_', '-')} must be a gs:// path to submit "
                    f"(workers cannot see this machine's {getattr(args, flag)})"
                )
    problems += cloud.invalid("--image", args.image, "image")
    problems += cloud.invalid("--project", args.project, "project")
    problems += cloud.invalid("--region", args.region, "region")
    problems += cloud.invalid("--service-account", args.service_account, "service_account")
    if args.schedule and not CRON.fullmatch(args.schedule.strip()):
        problems.append(
            f"--schedule {args.schedule!r} is not a cron line (five fields, e.g. '0 3 * * *', "
            "optionally prefixed with 'TZ=Area/City ')"
        )
    if args.schedule and args.compile_only:
        problems.append("--schedule creates a schedule in Vertex; it cannot go with --compile-only")
    if args.dataflow and not args.dataflow_temp_location:
        problems.append("--dataflow needs --dataflow-temp-location gs://bucket/tmp")
    return problems


def pipeline_config(args: argparse.Namespace) -> config_lib.PipelineConfig:
    """The pipeline config for Vertex; raises ConfigProblems with every problem found."""
    problems = _check_flags(args)
    policy_json = settings.check_anomaly_policy(problems, args.anomaly_policy)
    raise_if_any(problems)

    region = args.region or ""
    beam_args: tuple[str, ...] = ()
    vertex_training = vertex_endpoint = None
    if args.dataflow:
        dataflow = settings.collect(
            problems,
            lambda: cloud.DataflowSettings(
                project=args.project,
                region=region,
                temp_location=args.dataflow_temp_location,
                machine_type=args.dataflow_machine_type,
                max_num_workers=args.dataflow_max_workers,
                disk_size_gb=args.dataflow_disk_size_gb,
                worker_image=None if args.dataflow_setup_file else args.image,
                setup_file=args.dataflow_setup_file,
                service_account=args.dataflow_service_account,
                subnetwork=args.dataflow_subnetwork,
                use_public_ips=not args.dataflow_no_public_ips,
            ),
        )
        beam_args = dataflow.beam_pipeline_args() if dataflow else ()
    if args.vertex_training:
        vertex_training = settings.collect(
            problems,
            lambda: cloud.VertexTraining(
                project=args.project,
                region=region,
                image=args.image,
                machine_type=args.training_machine_type,
                service_account=args.service_account,
            ),
        )
    if args.endpoint_name:
        vertex_endpoint = settings.collect(
            problems,
            lambda: cloud.VertexEndpoint(
                project=args.project,
                region=region,
                endpoint_name=args.endpoint_name,
                serving_image=args.endpoint_serving_image or cloud.DEFAULT_SERVING_IMAGE,
                machine_type=args.endpoint_machine_type,
            ),
        )
    raise_if_any(problems)
    return config_lib.PipelineConfig(
        pipeline_name=args.pipeline_name,
        pipeline_root=args.pipeline_root,
        data_root=args.data_root,
        serving_model_dir=f"{args.serving_dir.rstrip('/')}/{args.model_name}",
        # Vertex AI Pipelines keeps MLMD itself (Vertex ML Metadata).
        metadata_path=None,
        schema_path=args.schema,
        module_fingerprint=config_lib.module_fingerprint(),
        anomaly_policy_json=policy_json,
        run_tuner=not args.no_tune,
        beam_pipeline_args=beam_args,
        enable_cache=not args.no_cache,
        portable_resolvers=True,
        vertex_training=vertex_training,
        vertex_endpoint=vertex_endpoint,
        **settings.training_settings(args),
    )


def compile_pipeline(config: config_lib.PipelineConfig, image: str, output: pathlib.Path) -> dict:
    """Writes the Vertex pipeline JSON (a PipelineJob) to `output` and returns it."""
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from tfx_pipeline import pipeline as pipeline_lib

    output.parent.mkdir(parents=True, exist_ok=True)
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=str(output.parent),
        output_filename=output.name,
    )
    runner.run(pipeline_lib.create_pipeline(config), write_out=True)
    return json.loads(output.read_text())


def submit(args: argparse.Namespace, template: pathlib.Path) -> str:
    """Submits one run (or creates a schedule) with PipelineJob; returns the resource name."""
    from google.cloud import aiplatform

    aiplatform.init(project=args.project, location=args.region)
    job = aiplatform.PipelineJob(
        display_name=args.pipeline_name,
        template_path=str(template),
        pipeline_root=args.pipeline_root,
        project=args.project,
        location=args.region,
        enable_caching=not args.no_cache,
    )
    if args.schedule:
        schedule = job.create_schedule(
            cron=args.schedule.strip(),
            display_name=f"{args.pipeline_name}-schedule",
            max_concurrent_run_count=1,
            service_account=args.service_account,
        )
        return schedule.resource_name
    job.submit(service_account=args.service_account)
    return job.resource_name


def compile_and_submit(args: argparse.Namespace, config: config_lib.PipelineConfig) -> int:
    """Compiles, prints what would run where, and submits unless --compile-only; the exit status."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    # Compiling runs no TensorFlow; its import-time CUDA messages are noise here.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Google client libraries warn about Python versions and TFX about deprecations on import;
    # none of it is actionable for someone compiling this pipeline.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    job = compile_pipeline(config, args.image, args.output)
    tasks = sorted(job["pipelineSpec"]["root"]["dag"]["tasks"])
    print(f"Compiled {len(tasks)} tasks to {args.output}")
    print(f"  image:        {args.image}")
    print(f"  Beam runs on: {'Dataflow' if args.dataflow else 'each component container'}")
    print(f"  training on:  {'Vertex AI custom jobs' if args.vertex_training else 'the pipeline'}")
    if args.endpoint_name:
        print(f"  also deploys: Vertex AI endpoint {args.endpoint_name}")
    if args.compile_only:
        print("Not submitted (--compile-only).")
        return EXIT_OK
    try:
        name = submit(args, args.output)
    except Exception as error:  # noqa: BLE001 - any cloud failure is reported, not a traceback
        print(f"error: submitting to Vertex AI failed: {type(error).__name__}: {error}")
        return EXIT_SUBMIT_FAILED
    print(f"{'Scheduled' if args.schedule else 'Submitted'}: {name}")
    return EXIT_OK
