"""The R client (clients/r/tfserving.R) against a live server: the answers the Python client gets.

One Rscript run makes every call and prints its results as JSON; each test compares a part of
them with the same request made through serving/client.py. Without Rscript the tests skip, unless
CI_REQUIRE_R is set (.ci/run sets it), when they fail.
"""

import json
import math
import os
import shutil
import socket
import subprocess

import pytest

from serving.client import ServingClient, ServingClientError
from serving.server import ModelServer
from serving.versions import ModelSpec, VersionPolicy
from tests.conftest import REPO_ROOT
from tests.serving.tiny_models import save_tiny

R_CLIENT = REPO_ROOT / "clients" / "r" / "tfserving.R"
PAIRS = [[1.0, 2.0], [3.0, math.nan], [math.inf, 1.0]]
MULTI_ROWS = [{"a": 1.5, "b": "x", "c": 1}, {"a": math.nan, "b": "h\u00e9llo", "c": 2}]
MULTI_COLUMNS = {"a": [1.5, math.nan], "b": ["x", "h\u00e9llo"], "c": [1, 2]}
ONE_ROW = {"a": math.nan, "b": "x", "c": 1}

# Every call, in R. Results are printed with jsonlite's defaults for R values (data frames as
# rows, NaN and Inf as the strings "NaN" and "Inf"); `numbers()` below reads them back.
R_CALLS = r"""
source(Sys.getenv("R_CLIENT"))
client <- tfs_client(Sys.getenv("SERVER_URL"))
failure <- function(call) {
  tryCatch({ call; list(class = "none") }, error = function(e) {
    list(class = class(e), status = e$status, error = e$error, message = conditionMessage(e))
  })
}
pairs <- matrix(c(1, 2, 3, NaN, Inf, 1), ncol = 2, byrow = TRUE)
multi <- data.frame(a = c(1.5, NA), b = c("x", "h\u00e9llo"), c = c(1L, 2L))
one <- data.frame(a = NA, b = "x", c = 1L)  # a bare NA is logical in R
results <- list(
  status = tfs_model_status(client, "tiny"),
  status_v1 = tfs_model_status(client, "tiny", version = 1),
  metadata = tfs_metadata(client, "tiny"),
  metadata_stable = tfs_metadata(client, "tiny", label = "stable"),
  pairs = tfs_predict(client, "tiny", pairs),
  pairs_v1 = tfs_predict(client, "tiny", pairs, version = 1),
  pairs_stable = tfs_predict(client, "tiny", pairs, label = "stable"),
  pairs_canary = tfs_predict(client, "tiny", pairs, label = "canary"),
  pairs_columns = tfs_predict_columns(client, "tiny", pairs, signature_name = "serving_default"),
  multi_rows = tfs_predict(client, "tiny", multi, signature_name = "multi"),
  multi_columns = tfs_predict_columns(client, "tiny", multi, signature_name = "multi"),
  one_row = tfs_predict(client, "tiny", one, signature_name = "multi"),
  # I() keeps each length-1 output an array when the results are printed.
  one_column = lapply(tfs_predict_columns(client, "tiny", one, signature_name = "multi"), I),
  bad_request = failure(tfs_predict(client, "tiny", list(list(x = c("a", "b"))))),
  missing_model = failure(tfs_model_status(client, "nope")),
  missing_version = failure(tfs_predict(client, "tiny", pairs, version = 7)),
  unreachable = failure(tfs_model_status(tfs_client(Sys.getenv("CLOSED_URL")), "tiny")),
  na_integer = failure(tfs_predict(client, "tiny", transform(multi, c = c(1L, NA)),
                                   signature_name = "multi")),
  version_and_label = failure(tfs_predict(client, "tiny", pairs, version = 1, label = "stable"))
)
cat(jsonlite::toJSON(results, auto_unbox = TRUE, digits = NA, na = "string"))
"""


@pytest.fixture(scope="module")
def rscript() -> str:
    path = shutil.which("Rscript")
    if path is None:
        reason = "Rscript is not installed (clients/r/README.md names the Debian packages)"
        if os.environ.get("CI_REQUIRE_R"):
            pytest.fail(f"{reason}; CI_REQUIRE_R is set, so the R client must be tested")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    save_tiny(str(root / "tiny"), 1, scale=2.0)
    save_tiny(str(root / "tiny"), 2, scale=3.0)
    spec = ModelSpec(
        name="tiny",
        base_path=str(root / "tiny"),
        policy=VersionPolicy.ALL,
        labels=(("stable", 1), ("canary", 2)),
    )
    with ModelServer([spec], port=0, poll_seconds=0, access_log=False) as running:
        yield running


@pytest.fixture(scope="module")
def python_client(server) -> ServingClient:
    return ServingClient(f"http://127.0.0.1:{server.port}")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def r_results(rscript, server, tmp_path_factory) -> dict:
    script = tmp_path_factory.mktemp("r") / "calls.R"
    script.write_text(R_CALLS)
    env = {
        **os.environ,
        "R_CLIENT": str(R_CLIENT),
        "SERVER_URL": f"http://127.0.0.1:{server.port}",
        "CLOSED_URL": f"http://127.0.0.1:{closed_port()}",
        "LANG": "C.UTF-8",  # so R reads and prints the non-ASCII test string as UTF-8
    }
    result = subprocess.run(
        [rscript, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, f"Rscript failed:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout)


def numbers(value):
    """`value` with every number a float and R's "NaN"/"Inf"/"-Inf" strings as the floats they
    name, so R's and Python's answers compare by value (json.dumps writes NaN the same way)."""
    if isinstance(value, dict):
        return {key: numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [numbers(item) for item in value]
    if value in ("NaN", "Inf", "-Inf"):
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def same(r_value, python_value) -> bool:
    return json.dumps(numbers(r_value), sort_keys=True) == json.dumps(
        numbers(python_value), sort_keys=True
    )


def python_failure(call) -> ServingClientError:
    with pytest.raises(ServingClientError) as raised:
        call()
    return raised.value


def test_status_is_a_data_frame_row_per_version(r_results, python_client):
    expected = [
        {
            "version": int(entry["version"]),
            "state": entry["state"],
            "status.error_code": entry["status"]["error_code"],
            "status.error_message": entry["status"]["error_message"],
        }
        for entry in python_client.model_status("tiny")["model_version_status"]
    ]
    assert [row["version"] for row in expected] == [2, 1]
    assert same(r_results["status"], expected)
    assert same(r_results["status_v1"], [row for row in expected if row["version"] == 1])


def test_metadata_matches_the_servers_and_follows_the_label(r_results, python_client):
    assert same(r_results["metadata"], python_client.model_metadata("tiny"))
    assert r_results["metadata"]["model_spec"]["version"] == "2"
    assert r_results["metadata_stable"]["model_spec"]["version"] == "1"
    signatures = r_results["metadata"]["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "multi", "binary"} <= set(signatures)


def test_missing_and_infinite_numbers_travel_both_ways(r_results, python_client):
    # The server would answer 400 to anything but bare NaN and Infinity for a float input.
    expected = python_client.predict_rows("tiny", PAIRS)
    assert same(expected, [9.0, math.nan, math.inf])  # latest version: scale 3
    assert same(r_results["pairs"], expected)
    assert same(r_results["pairs_columns"], python_client.predict_columns("tiny", PAIRS))


def test_version_and_label_choose_the_model(r_results, python_client):
    version_1 = python_client.predict_rows("tiny", PAIRS, version=1)
    assert same(version_1, [6.0, math.nan, math.inf])  # scale 2
    assert same(r_results["pairs_v1"], version_1)
    assert same(
        r_results["pairs_stable"], python_client.predict_rows("tiny", PAIRS, label="stable")
    )
    assert same(
        r_results["pairs_canary"], python_client.predict_rows("tiny", PAIRS, label="canary")
    )
    assert not same(r_results["pairs_stable"], r_results["pairs_canary"])


def test_a_data_frame_feeds_several_inputs_as_rows_or_columns(r_results, python_client):
    rows = python_client.predict_rows("tiny", MULTI_ROWS, signature_name="multi")
    assert rows[1]["echo"] == "h\u00e9llo" and rows[1]["length"] == 6  # UTF-8 bytes
    assert same(r_results["multi_rows"], rows)
    columns = python_client.predict_columns("tiny", MULTI_COLUMNS, signature_name="multi")
    assert same(r_results["multi_columns"], columns)


def test_a_batch_of_one_with_rs_bare_na_as_a_missing_float(r_results, python_client):
    rows = python_client.predict_rows("tiny", [ONE_ROW], signature_name="multi")
    assert same(rows, [{"doubled": math.nan, "echo": "x", "length": 1, "plus_one": 2}])
    assert same(r_results["one_row"], rows)
    columns = {name: [value] for name, value in ONE_ROW.items()}
    expected = python_client.predict_columns("tiny", columns, signature_name="multi")
    assert same(r_results["one_column"], expected)


def test_a_bad_request_raises_tfserving_error_with_tf_servings_400(r_results, python_client):
    expected = python_failure(lambda: python_client.predict_rows("tiny", [{"x": ["a", "b"]}]))
    failure = r_results["bad_request"]
    assert failure["class"] == ["tfserving_error", "error", "condition"]
    assert (failure["status"], failure["error"]) == (400, expected.message)
    assert "is not of expected type: float" in failure["error"]
    assert failure["message"] == str(expected)  # "<url>: 400: <message>", like the Python client


def test_a_missing_model_or_version_is_a_404(r_results, python_client):
    for key, call in [
        ("missing_model", lambda: python_client.model_status("nope")),
        ("missing_version", lambda: python_client.predict_rows("tiny", PAIRS, version=7)),
    ]:
        expected = python_failure(call)
        assert expected.status == 404
        assert r_results[key]["class"][0] == "tfserving_error"
        assert (r_results[key]["status"], r_results[key]["error"]) == (404, expected.message)


def test_no_server_is_a_tfserving_error_without_status(r_results):
    failure = r_results["unreachable"]
    assert failure["class"][0] == "tfserving_error"
    assert failure["status"] == "NA"  # R's NA, as jsonlite writes it
    assert failure["error"].startswith("cannot reach the server")


def test_mistakes_the_client_can_see_fail_before_sending(r_results):
    for key, words in [
        ("na_integer", "TF Serving has no missing integer"),
        ("version_and_label", "either version or label"),
    ]:
        failure = r_results[key]
        assert failure["class"] == ["simpleError", "error", "condition"], failure
        assert words in failure["message"]
