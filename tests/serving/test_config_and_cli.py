"""models.config files, the real-TF-Serving command writer, the client's errors and the CLI."""

import subprocess
import sys

import pytest

from serving import config, tf_serving
from serving.__main__ import build_parser, read_batching_parameters
from serving.__main__ import main as serve_main
from serving.client import ServingClient, ServingClientError
from serving.server import ModelServer
from serving.versions import VersionPolicy

TWO_MODELS = """
model_config_list {
  config {
    name: "tiny"
    base_path: "%s"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
  config {
    name: "classifier"
    base_path: "%s"
    model_platform: "tensorflow"
  }
}
"""


def test_config_file_drives_several_models_policies_and_labels(tmp_path, model_root):
    path = tmp_path / "models.config"
    path.write_text(TWO_MODELS % (model_root / "tiny", model_root / "classifier"))
    specs = config.load_config_file(str(path))
    tiny = specs[0]
    assert tiny.policy is VersionPolicy.SPECIFIC and tiny.specific_versions == (1, 2)
    assert dict(tiny.labels) == {"stable": 1, "canary": 2}
    with ModelServer(specs, port=0, poll_seconds=0, access_log=False) as server:
        client = ServingClient(server.url)
        assert client.predict_rows("tiny", [[1, 1]], label="stable") == [4.0]
        assert client.predict_rows("tiny", [[1, 1]], label="canary") == [6.0]
        assert client.classify("classifier", [{"x": 0.0}]) == [
            [["negative", 0.5], ["positive", 0.5]]
        ]
    # The file written for real TF Serving parses back to the same specs.
    assert config.load_config_file(str(path)) == specs
    round_trip = tmp_path / "again.config"
    round_trip.write_text(config.to_config_text(specs))
    assert config.load_config_file(str(round_trip)) == specs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "model_config_list { config { name: 'a' base_path: '/x' } config { name: 'a' base_path: '/y' } }",
            "configured twice",
        ),
        ("model_config_list { config { name: '../etc' base_path: '/x' } }", "no slashes"),
        ("model_config_list { config { name: 'a' } }", "has no base_path"),
        (
            "model_config_list { config { name: 'a' base_path: '/x' model_platform: 'onnx' } }",
            "model_platform 'onnx' is not supported",
        ),
        (
            "model_config_list { config { name: 'a' base_path: '/x' "
            "model_version_policy { specific { versions: 1 } } version_labels { key: 'x' value: 2 } } }",
            "label 'x' points to version 2",
        ),
        ("not a proto {", "is not a ModelServerConfig text proto"),
        ("", "has no model_config_list"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "models.config"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=message):
        config.load_config_file(str(path))


def test_tf_serving_configs_and_commands(tmp_path, model_root, capsys):
    import shutil

    serving_dir = tmp_path / "serving"
    shutil.copytree(model_root / "tiny", serving_dir / "tiny")
    (serving_dir / "empty").mkdir()
    assert tf_serving.main(["--serving_dir", str(serving_dir)]) == 0
    out = capsys.readouterr().out
    assert "tensorflow_model_server --port=8500 --rest_api_port=8501 --model_config_file=" in out
    assert (
        "docker run --rm -p 8500:8500 -p 8501:8501 -v" in out and "tensorflow/serving:2.16.1" in out
    )
    host_specs = config.load_config_file(str(serving_dir / "models.config"))
    assert [(s.name, s.base_path) for s in host_specs] == [("tiny", str(serving_dir / "tiny"))]
    docker_specs = config.load_config_file(str(serving_dir / "models.docker.config"))
    assert [s.base_path for s in docker_specs] == ["/models/tiny"]
    assert "prometheus_config" in (serving_dir / "monitoring.config").read_text()
    parsed = read_batching_parameters(str(serving_dir / "batching.config"))
    assert parsed.max_batch_size == 64 and parsed.batch_timeout_micros == 2000


def test_tf_serving_command_without_models_explains(tmp_path, capsys):
    assert tf_serving.main(["--serving_dir", str(tmp_path / "none")]) == 2
    assert "run the pipeline first" in capsys.readouterr().err


def test_bad_batching_file_names_the_line(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text("max_batch_size { value: 8 }\nturbo { value: 1 }\n")
    with pytest.raises(ValueError, match=r"batching.config:2: unknown batching parameter 'turbo'"):
        read_batching_parameters(str(path))


def test_cli_refuses_bad_combinations(capsys, tmp_path):
    assert serve_main(["--batching_parameters_file", "x"]) == 2
    assert "without --enable_batching" in capsys.readouterr().err
    assert serve_main(["--model_config_file", str(tmp_path / "missing.config")]) == 2
    assert "cannot read model config file" in capsys.readouterr().err
    assert serve_main(["--rest_api_port", "70000"]) == 2
    # Every flag problem at once, before any model loads.
    argv = ["--port", "0", "--rest_api_timeout_in_ms", "0", "--grpc_max_threads", "-1"]
    assert serve_main(argv) == 2
    err = capsys.readouterr().err
    assert "--port 0 needs --grpc_socket_path" in err
    assert "--rest_api_timeout_in_ms must be positive" in err
    assert "--grpc_max_threads must be positive" in err
    assert serve_main(["--port", "8600", "--rest_api_port", "8600"]) == 2
    assert "--port and --rest_api_port are both 8600" in capsys.readouterr().err


def test_cli_warmup_flags_read_as_tensorflow_model_server_reads_them(capsys):
    parser = build_parser()
    defaults = parser.parse_args([])
    assert defaults.enable_model_warmup is True
    assert defaults.num_request_iterations_for_warmup == 1
    # TF's bool flags: bare, true/false in any case, 1/0.
    for argv, expected in [
        (["--enable_model_warmup"], True),
        (["--enable_model_warmup=false"], False),
        (["--enable_model_warmup=FALSE"], False),
        (["--enable_model_warmup=0"], False),
        (["--enable_model_warmup=True"], True),
    ]:
        assert parser.parse_args(argv).enable_model_warmup is expected, argv
    with pytest.raises(SystemExit) as refused:
        serve_main(["--enable_model_warmup=maybe"])
    assert refused.value.code == 2
    assert "expected true or false, got 'maybe'" in capsys.readouterr().err
    # int32, and 0 is TF Serving's "not set" (replay once); a negative count means nothing.
    for value in ("-1", "2147483648"):
        assert serve_main(["--num_request_iterations_for_warmup", value]) == 2
        assert "--num_request_iterations_for_warmup must be 0" in capsys.readouterr().err


def test_cli_help_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "serving", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for flag in (
        "--model_config_file",
        "--rest_api_port",
        "--enable_batching",
        "--host",
        "--max_request_bytes",
        "--enable_model_warmup",
        "--num_request_iterations_for_warmup",
        "--request_schema_file",
        "--strict_request_schema",
    ):
        assert flag in result.stdout


def test_client_errors_carry_status_and_server_message(server):
    client = ServingClient(server.url)
    with pytest.raises(ServingClientError) as error:
        client.predict_rows("missing", [[1, 2]])
    assert error.value.status == 404
    assert error.value.message == "Servable not found for request: Latest(missing)"
    with pytest.raises(ServingClientError) as error:
        ServingClient("http://127.0.0.1:9", timeout=2).model_status("tiny")
    assert error.value.status is None and "cannot reach the server" in error.value.message
    with pytest.raises(ValueError, match="either version or label"):
        client.predict_rows("tiny", [[1, 2]], version=1, label="stable")
    with pytest.raises(ValueError, match="http://host:port"):
        ServingClient("localhost:8501")


def test_client_reads_status_metadata_and_columns(server):
    client = ServingClient(server.url)
    assert client.model_status("tiny")["model_version_status"][0]["state"] == "AVAILABLE"
    assert (
        "serving_default"
        in client.model_metadata("tiny")["metadata"]["signature_def"]["signature_def"]
    )
    assert client.predict_columns("tiny", [[1, 1], [2, 2]], version=1) == [4.0, 8.0]
    assert client.regress("classifier", [{"x": 1.0}], signature_name="regress_x") == [2.0]
