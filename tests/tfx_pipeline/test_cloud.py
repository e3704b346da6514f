"""Cloud settings: every malformed value is named before anything is compiled or sent."""

import pytest

from tfx_pipeline import cloud


def test_every_problem_with_dataflow_settings_is_named_at_once():
    with pytest.raises(ValueError) as raised:
        cloud.DataflowSettings(
            project="My_Project",
            region="us central",
            temp_location="/tmp/x",
            machine_type="huge machine",
            max_num_workers=0,
            worker_image="taxi image",
            setup_file="./setup.py",
        )
    message = str(raised.value)
    for expected in (
        "project: 'My_Project'",
        "region: 'us central'",
        "temp_location: '/tmp/x'",
        "machine_type: 'huge machine'",
        "max_num_workers must be at least 1",
        "worker_image: 'taxi image'",
        "exactly one of worker_image",
    ):
        assert expected in message


def test_setup_file_workers_and_private_networking_become_beam_flags():
    args = cloud.DataflowSettings(
        project="my-project-1",
        region="europe-west4",
        temp_location="gs://taxi-bucket/tmp",
        setup_file="./setup.py",
        disk_size_gb=50,
        subnetwork="regions/europe-west4/subnetworks/ml",
        use_public_ips=False,
        service_account="dataflow@my-project-1.iam.gserviceaccount.com",
    ).beam_pipeline_args()
    assert "--setup_file=./setup.py" in args
    assert not any(arg.startswith("--sdk_container_image") for arg in args)
    assert {"--disk_size_gb=50", "--no_use_public_ips"} <= set(args)
    assert "--service_account_email=dataflow@my-project-1.iam.gserviceaccount.com" in args


def test_vertex_settings_reject_malformed_values():
    with pytest.raises(ValueError, match="image: 'latest'"):
        cloud.VertexTraining(project="my-project-1", region="us-central1", image="latest")
    with pytest.raises(ValueError, match="min_replicas <= max_replicas"):
        cloud.VertexEndpoint(
            project="my-project-1",
            region="us-central1",
            endpoint_name="taxi",
            min_replicas=3,
            max_replicas=1,
        )
