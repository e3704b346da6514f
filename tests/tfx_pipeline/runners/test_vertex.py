"""vertex_runner.py: the Vertex AI pipeline JSON compiled offline, what would be submitted, bad flags."""

import dataclasses
import json
import pathlib
from unittest import mock

import pytest

import vertex_runner
from tfx_pipeline import node_ids
from tfx_pipeline import pipeline as pipeline_lib
from tfx_pipeline.problems import EXIT_USAGE
from tfx_pipeline.runners import vertex

IMAGE = "us-central1-docker.pkg.dev/my-project-1/ml/taxi-pipeline:1.0"
BEAM_COMPONENTS = ("CsvExampleGen", "StatisticsGen", "Transform", "Evaluator")
# The stock blessed-model resolver compiles to two Vertex tasks.
BASELINE_TASKS = (
    f"{node_ids.BASELINE_RESOLVER}-model-blessing-resolver",
    f"{node_ids.BASELINE_RESOLVER}-model-resolver",
)
CLOUD_FLAGS = (
    "--project=my-project-1",
    "--region=us-central1",
    "--dataflow",
    "--dataflow-temp-location=gs://taxi-bucket/tmp",
    "--dataflow-max-workers=25",
    "--dataflow-machine-type=n2-standard-8",
    "--vertex-training",
    "--endpoint-name=taxi-endpoint",
)


def local_roots(tmp_path) -> list[str]:
    return [
        f"--pipeline-root={tmp_path / 'root'}",
        f"--data-root={tmp_path / 'data'}",
        f"--serving-dir={tmp_path / 'serving'}",
        f"--image={IMAGE}",
        f"--output={tmp_path / 'pipeline.json'}",
    ]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The pipeline JSON compiled offline with local roots, Dataflow, Vertex training, endpoint."""
    tmp_path = tmp_path_factory.mktemp("vertex")
    assert vertex_runner.main([*local_roots(tmp_path), *CLOUD_FLAGS, "--compile-only"]) == 0
    return json.loads((tmp_path / "pipeline.json").read_text())


def tasks(job) -> dict:
    return job["pipelineSpec"]["root"]["dag"]["tasks"]


def executor(job, task_name: str) -> dict:
    spec = job["pipelineSpec"]
    label = spec["components"][tasks(job)[task_name]["componentRef"]["name"]]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]


def parameter(job, task_name: str, name: str):
    """A task's constant parameter; TFX compiles dicts and protos to JSON strings."""
    value = tasks(job)[task_name]["inputs"]["parameters"][name]["runtimeValue"]["constantValue"]
    return json.loads(value["stringValue"])


def upstream(job, task_name: str) -> set[str]:
    task = tasks(job)[task_name]
    producers = {
        spec["taskOutputArtifact"]["producerTask"]
        for spec in task.get("inputs", {}).get("artifacts", {}).values()
    }
    return producers | set(task.get("dependentTasks", []))


def test_every_component_is_a_task(compiled):
    expected = {
        node_ids.EXAMPLE_GEN,
        node_ids.IMPORT_SCHEMA_GEN,
        node_ids.STATISTICS_GEN,
        node_ids.PREVIOUS_STATISTICS_RESOLVER,
        node_ids.EXAMPLE_VALIDATOR,
        node_ids.DATA_GATE,
        node_ids.TRANSFORM,
        node_ids.TUNER,
        node_ids.TRAINER,
        *BASELINE_TASKS,
        node_ids.EVALUATOR,
        node_ids.INFRA_VALIDATOR,
        node_ids.PUSHER,
        node_ids.VERTEX_ENDPOINT_PUSHER,
    }
    assert set(tasks(compiled)) == expected


def test_the_edges_are_the_pipelines(compiled, tmp_path):
    args = vertex.build_parser(description="").parse_args(
        [*local_roots(tmp_path), *CLOUD_FLAGS, "--compile-only"]
    )
    pipeline = pipeline_lib.create_pipeline(vertex.pipeline_config(args))
    # Tasks that consume the baseline read it from the second of its two resolver tasks.
    renamed = {node_ids.BASELINE_RESOLVER: BASELINE_TASKS[1]}
    for node in pipeline.components:
        if node.id == node_ids.BASELINE_RESOLVER:
            continue
        expected = {renamed.get(up.id, up.id) for up in node.upstream_nodes}
        assert upstream(compiled, node.id) == expected, node.id
    assert upstream(compiled, BASELINE_TASKS[1]) == {BASELINE_TASKS[0]}
    assert node_ids.DATA_GATE in upstream(compiled, node_ids.TRANSFORM)
    assert node_ids.EVALUATOR in upstream(compiled, node_ids.PUSHER)
    for pusher in (node_ids.PUSHER, node_ids.VERTEX_ENDPOINT_PUSHER):
        assert node_ids.INFRA_VALIDATOR in upstream(compiled, pusher), pusher


def test_every_container_runs_the_pipeline_image(compiled):
    containers = [
        executor(compiled, name)["container"]
        for name in tasks(compiled)
        if "container" in executor(compiled, name)
    ]
    assert len(containers) == 12
    assert {container["image"] for container in containers} == {IMAGE}


def test_beam_components_run_on_dataflow_with_the_settings_given(compiled):
    from apache_beam.options.pipeline_options import (
        GoogleCloudOptions,
        PipelineOptions,
        StandardOptions,
        WorkerOptions,
    )

    for name in BEAM_COMPONENTS:
        args = executor(compiled, name)["container"]["args"]
        options = PipelineOptions([a for a in args if a.startswith("--") and "=" in a])
        assert options.view_as(StandardOptions).runner == "DataflowRunner", name
        cloud = options.view_as(GoogleCloudOptions)
        assert (cloud.project, cloud.region) == ("my-project-1", "us-central1")
        assert cloud.temp_location == "gs://taxi-bucket/tmp"
        workers = options.view_as(WorkerOptions)
        assert (workers.max_num_workers, workers.machine_type) == (25, "n2-standard-8")
        # Dataflow workers get our code from the same image the pipeline runs in.
        assert workers.sdk_container_image == IMAGE


def test_tuner_trainer_and_endpoint_use_the_vertex_extensions(compiled):
    assert executor(compiled, "Trainer")["container"]["args"][1] == (
        "tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor"
    )
    assert executor(compiled, "Tuner")["container"]["args"][1] == (
        "tfx.extensions.google_cloud_ai_platform.tuner.executor.Executor"
    )
    trainer_config = parameter(compiled, "Trainer", "custom_config")
    job_spec = trainer_config["ai_platform_training_args"]
    assert job_spec["project"] == "my-project-1"
    assert job_spec["worker_pool_specs"][0]["container_spec"]["image_uri"] == IMAGE
    assert trainer_config["ai_platform_vertex_region"] == "us-central1"
    # Module settings still reach run_fn next to the Vertex keys.
    assert trainer_config["batch_size"] == 128
    pusher_config = parameter(compiled, "VertexEndpointPusher", "custom_config")
    assert pusher_config["ai_platform_serving_args"]["endpoint_name"] == "taxi-endpoint"
    assert "tf2-cpu" in pusher_config["ai_platform_vertex_container_image_uri"]


def test_infra_validation_runs_our_executor_in_the_pipeline_image(compiled):
    # No Docker or Kubernetes on Vertex either: the step starts the model server inside the
    # pipeline image, which holds serving/ (Dockerfile) next to the pipeline.
    container = executor(compiled, node_ids.INFRA_VALIDATOR)["container"]
    assert container["image"] == IMAGE
    assert "tfx_pipeline.components.infra_validator.executor.Executor" in json.dumps(
        container["args"]
    )
    request_spec = parameter(compiled, node_ids.INFRA_VALIDATOR, "request_spec")
    assert request_spec["tensorflow_serving"]["signature_names"] == [
        "serving_default",
        "serving_raw",
    ]
    assert request_spec["make_warmup"] is True
    assert request_spec["split_name"] == "eval"
    inputs = tasks(compiled)[node_ids.INFRA_VALIDATOR]["inputs"]
    assert inputs["parameters"]["server"]["runtimeValue"]["constantValue"]["stringValue"] == "auto"
    assert (
        inputs["artifacts"]["baseline_model"]["taskOutputArtifact"]["producerTask"]
        == (BASELINE_TASKS[1])
    )
    assert inputs["artifacts"]["examples"]["taskOutputArtifact"]["producerTask"] == (
        node_ids.EXAMPLE_GEN
    )


def test_the_pusher_writes_the_serving_dir_and_the_root_is_the_pipeline_root(compiled):
    destination = parameter(compiled, "Pusher", "push_destination")
    root = pathlib.Path(compiled["runtimeConfig"]["gcsOutputDirectory"])
    assert root.name == "root"
    assert destination["filesystem"]["base_directory"] == str(root.parent / "serving" / "taxi")


def test_without_cloud_flags_beam_runs_in_the_component_container(tmp_path):
    assert vertex_runner.main([*local_roots(tmp_path), "--compile-only"]) == 0
    job = json.loads((tmp_path / "pipeline.json").read_text())
    args = executor(job, "Transform")["container"]["args"]
    assert not any(arg.startswith("--runner") for arg in args)
    assert "VertexEndpointPusher" not in tasks(job)
    assert executor(job, "Trainer")["container"]["args"][1] == (
        "tfx.components.trainer.executor.GenericExecutor"
    )


def test_bad_cloud_settings_fail_before_anything_is_compiled(tmp_path, capsys):
    argv = [
        "--pipeline-root=/tmp/local",
        "--data-root=data/taxi",
        "--serving-dir=gs://taxi-bucket/serving",
        "--image=not an image",
        "--region=europe",
        "--schedule=every night",
        "--dataflow",
        f"--output={tmp_path / 'pipeline.json'}",
    ]
    assert vertex_runner.main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    for expected in (
        "--project is required",
        "--pipeline-root must be a gs:// path",
        "--data-root must be a gs:// path",
        "--image: 'not an image' is not valid",
        "--region: 'europe' is not valid",
        "--schedule 'every night' is not a cron line",
        "--dataflow needs --dataflow-temp-location",
    ):
        assert expected in err
    assert "--serving-dir" not in err
    assert not (tmp_path / "pipeline.json").exists()


def test_malformed_dataflow_and_training_settings_are_named_together(tmp_path, capsys):
    argv = [
        *local_roots(tmp_path),
        "--compile-only",
        "--project=my-project-1",
        "--region=us-central1",
        "--dataflow",
        "--dataflow-temp-location=/not/gcs",
        "--vertex-training",
        "--training-machine-type=big box",
    ]
    assert vertex_runner.main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    # Every settings object's problems, together, one per line.
    assert "error: invalid Dataflow settings: temp_location: '/not/gcs' is not valid" in err
    assert "error: invalid Vertex training settings: machine_type: 'big box' is not valid" in err


GCS_FLAGS = [
    "--project=my-project-1",
    "--region=europe-west4",
    "--pipeline-root=gs://taxi-bucket/root",
    "--data-root=gs://taxi-bucket/data/taxi",
    "--serving-dir=gs://taxi-bucket/serving",
    f"--image={IMAGE}",
    "--service-account=pipelines@my-project-1.iam.gserviceaccount.com",
]


def test_submit_sends_the_compiled_template_with_the_gcs_root(tmp_path, capsys):
    output = tmp_path / "pipeline.json"
    with (
        mock.patch("google.cloud.aiplatform.PipelineJob") as pipeline_job,
        mock.patch("google.cloud.aiplatform.init") as init,
    ):
        pipeline_job.return_value.resource_name = "projects/1/locations/x/pipelineJobs/taxi-1"
        assert vertex_runner.main([*GCS_FLAGS, f"--output={output}"]) == 0
    init.assert_called_once_with(project="my-project-1", location="europe-west4")
    kwargs = pipeline_job.call_args.kwargs
    assert kwargs["template_path"] == str(output)
    assert kwargs["pipeline_root"] == "gs://taxi-bucket/root"
    assert (kwargs["project"], kwargs["location"]) == ("my-project-1", "europe-west4")
    assert kwargs["enable_caching"] is True
    pipeline_job.return_value.submit.assert_called_once_with(
        service_account="pipelines@my-project-1.iam.gserviceaccount.com"
    )
    # What was sent is a valid template: the serving dir on GCS, no local path in it.
    job = json.loads(output.read_text())
    assert "/tmp" not in json.dumps(job["pipelineSpec"]["root"])
    assert "Submitted: projects/1/locations/x/pipelineJobs/taxi-1" in capsys.readouterr().out


def test_schedule_creates_a_vertex_schedule_instead_of_a_run(tmp_path):
    with (
        mock.patch("google.cloud.aiplatform.PipelineJob") as pipeline_job,
        mock.patch("google.cloud.aiplatform.init"),
    ):
        argv = [*GCS_FLAGS, f"--output={tmp_path / 'p.json'}", "--schedule=TZ=Etc/UTC 0 3 * * *"]
        assert vertex_runner.main(argv) == 0
    job = pipeline_job.return_value
    job.submit.assert_not_called()
    schedule = job.create_schedule.call_args.kwargs
    assert schedule["cron"] == "TZ=Etc/UTC 0 3 * * *"
    assert schedule["max_concurrent_run_count"] == 1


def test_a_failed_submission_is_reported_not_raised(tmp_path, capsys):
    with (
        mock.patch("google.cloud.aiplatform.PipelineJob") as pipeline_job,
        mock.patch("google.cloud.aiplatform.init"),
    ):
        pipeline_job.return_value.submit.side_effect = PermissionError("403 caller lacks access")
        assert vertex_runner.main([*GCS_FLAGS, f"--output={tmp_path / 'p.json'}"]) == 1
    assert "submitting to Vertex AI failed: PermissionError: 403" in capsys.readouterr().out


def test_unset_flags_leave_every_setting_at_the_pipeline_configs_default(tmp_path):
    args = vertex.build_parser(description="").parse_args(
        [*local_roots(tmp_path), "--compile-only"]
    )
    config = vertex.pipeline_config(args)
    # What Vertex sets on purpose: its resolvers and the policy read from the file.
    assert config.portable_resolvers is True
    for field in dataclasses.fields(config):
        if field.default is dataclasses.MISSING or field.name in (
            "portable_resolvers",
            "anomaly_policy_json",
        ):
            continue
        assert getattr(config, field.name) == field.default, field.name


def test_the_evaluator_runs_the_gated_executor_with_the_blessing_rules(tmp_path):
    flags = [
        *local_roots(tmp_path),
        "--project=my-project-1",
        "--region=us-central1",
        "--compile-only",
    ]
    gates = ["--min-slice-auc=0.6", "--max-slice-auc-gap=payment_type:Credit Card:Cash:0.2"]
    assert vertex_runner.main([*flags, *gates]) == 0
    job = json.loads((tmp_path / "pipeline.json").read_text())
    container = executor(job, node_ids.EVALUATOR)["container"]
    assert "tfx_pipeline.components.gated_evaluator.executor.Executor" in json.dumps(
        container["args"]
    )
    rules = parameter(job, node_ids.EVALUATOR, "blessing_rules")
    assert rules["min_slice_auc"] == 0.6 and rules["slice_features"] == ["payment_type"]
    assert rules["slice_gaps"] == [
        {"feature": "payment_type", "first": "Credit Card", "second": "Cash", "max_gap": 0.2}
    ]
    eval_config = parameter(job, node_ids.EVALUATOR, "eval_config")
    assert eval_config["options"]["confidence_intervals"]["method"] == "JACKKNIFE"
