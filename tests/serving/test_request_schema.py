"""Per-request schema check: rows outside a version's schema are counted per feature and reason,
answers stay TF Serving's, and strict mode refuses them naming the row, feature and value."""

import base64
import json
import logging
import re
import shutil

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import inference_pb2, predict_pb2, prediction_service_pb2_grpc

from models import features
from serving.__main__ import main as serve_main
from serving.grpc_client import example_input, model_spec
from serving.metrics import SCHEMA_CHECKED_ROWS, SCHEMA_VIOLATIONS, Metrics
from serving.request_schema import (
    EXAMPLE_OP_MIN_ROWS,
    MISSING_REQUIRED,
    OUT_OF_RANGE,
    SCHEMA_FILE,
    UNKNOWN_CATEGORY,
    RequestSchema,
    RequestSchemaSettings,
    SchemaFileError,
)
from serving.server import ModelServer
from serving.versions import ModelSpec, VersionPolicy
from tests.conftest import DATA_ROOT, SCHEMA_PATH, read_csv_rows
from tests.serving.conftest import Http
from tests.serving.test_warmup import predict_log, write_warmup
from tests.serving.tiny_models import save_classifier, save_raw_features

# The curated schema's shape in small: a required float and int with ranges, a required string
# whose domain is a top-level string_domain named by `domain:`, and the label source, which
# requests never carry.
RAW_SCHEMA = """
default_environment: "TRAINING"
default_environment: "SERVING"
feature {
  name: "fare" type: FLOAT
  presence { min_fraction: 1.0 min_count: 1 } value_count { min: 1 max: 1 }
  float_domain { min: 0.0 max: 1000.0 }
}
feature {
  name: "payment_type" type: BYTES
  presence { min_fraction: 1.0 min_count: 1 } value_count { min: 1 max: 1 }
  domain: "payment_type"
}
feature { name: "trip_start_hour" type: INT value_count { min: 1 max: 1 } int_domain { min: 0 max: 23 } }
feature { name: "company" type: BYTES presence { min_count: 0 } }
feature {
  name: "tips" type: FLOAT presence { min_fraction: 1.0 min_count: 1 }
  not_in_environment: "SERVING"
}
string_domain { name: "payment_type" value: "Cash" value: "Credit Card" }
"""
X_SCHEMA = 'feature { name: "x" type: FLOAT presence { min_fraction: 1.0 } float_domain { min: -5 max: 5 } }'
# Row 0 is inside the schema; rows 1-3 break it in every way a row can.
ROWS = [
    {"fare": 12.5, "payment_type": "Cash", "trip_start_hour": 18},
    {"fare": float("nan"), "payment_type": "Bitcoin", "trip_start_hour": 30},
    {"fare": 2000.0, "payment_type": "", "trip_start_hour": -1},
    {"fare": -0.5, "payment_type": "Credit Card", "trip_start_hour": 0},
]
EXPECTED = {
    ("fare", MISSING_REQUIRED): 1,
    ("fare", OUT_OF_RANGE): 2,
    ("payment_type", UNKNOWN_CATEGORY): 1,
    ("payment_type", MISSING_REQUIRED): 1,
    ("trip_start_hour", OUT_OF_RANGE): 1,
    ("trip_start_hour", MISSING_REQUIRED): 1,
}
RAW_DTYPES = {"fare": np.float32, "payment_type": object, "trip_start_hour": np.int64}


def columns(rows) -> dict[str, np.ndarray]:
    """Rows as serving_raw's numpy inputs, strings as bytes (as both APIs parse them)."""
    return {
        key: np.array(
            [row[key].encode() if dtype is object else row[key] for row in rows], dtype=dtype
        )
        for key, dtype in RAW_DTYPES.items()
    }


def example(row: dict) -> bytes:
    """A row as a tf.Example; a missing value leaves its feature out."""
    feature = {}
    for key, value in row.items():
        if isinstance(value, str) and value:
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        elif isinstance(value, int) and value != -1:
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        elif isinstance(value, float) and not np.isnan(value):
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def examples(rows) -> np.ndarray:
    array = np.empty(len(rows), dtype=object)
    array[:] = [example(row) for row in rows]
    return array


def raw_body(rows) -> str:
    """A serving_raw row-format body; NaN is a bare token in TF Serving's JSON."""
    instances = [{**row, "fare": "NaN" if np.isnan(row["fare"]) else row["fare"]} for row in rows]
    text = json.dumps({"signature_name": "serving_raw", "instances": instances})
    return text.replace('"NaN"', "NaN")


# --- the check itself -----------------------------------------------------------------------


def test_each_reason_is_counted_per_feature_and_the_label_never_as_missing():
    schema = RequestSchema.from_text(RAW_SCHEMA, "raw.pbtxt")
    assert [rule.name for rule in schema.rules] == ["fare", "payment_type", "trip_start_hour"]
    result = schema.check_inputs(columns(ROWS))
    assert result.rows == 4
    assert dict(result.counts) == EXPECTED
    texts = [violation.text() for violation in result.violations]
    assert texts[:3] == [
        "row 1: feature fare: missing required value (nan): the schema requires one in every row",
        'row 1: feature payment_type: unknown category "Bitcoin", not in the schema\'s string '
        "domain payment_type",
        "row 1: feature trip_start_hour: out of range: 30 is outside the schema's range [0, 23]",
    ]
    # The first five by row, then how many more: a refusal stays under gRPC's 1024 characters.
    assert (len(texts), result.more) == (5, 2)
    assert result.refusal("raw", 1).message.endswith("; and 2 more")
    long = schema.check_inputs(columns([{**ROWS[0], "payment_type": "x" * 5000}]))
    assert long.violations[0].value == '"' + "x" * 64 + '"... (5000 characters)'
    # A clean request counts its rows and nothing else; inputs the schema does not name,
    # nothing at all.
    clean = schema.check_inputs(columns(ROWS[:1]))
    assert (clean.rows, dict(clean.counts)) == (1, {})
    assert schema.check_inputs({"x": np.ones(3, np.float32)}) is None


def test_several_values_per_row_count_the_row_once():
    schema = RequestSchema.from_text(RAW_SCHEMA, "raw.pbtxt")
    result = schema.check_inputs({"fare": np.array([[1.0, 5000.0], [np.nan, np.nan], [2.0, 3.0]])})
    assert dict(result.counts) == {("fare", OUT_OF_RANGE): 1, ("fare", MISSING_REQUIRED): 1}
    assert [(v.row, v.value) for v in result.violations] == [(0, "5000.0"), (1, "nan")]
    column = schema.check_inputs({"fare": np.array([[5000.0], [1.0]])})  # [rows, 1]
    assert (column.rows, dict(column.counts)) == (2, {("fare", OUT_OF_RANGE): 1})


@pytest.mark.parametrize("copies", [1, EXAMPLE_OP_MIN_ROWS])
def test_tf_examples_count_as_raw_rows_do_decoded_in_python_or_in_one_op(copies):
    schema = RequestSchema.from_text(RAW_SCHEMA, "raw.pbtxt")
    result = schema.check_examples(examples(ROWS * copies))
    assert result.rows == 4 * copies
    assert dict(result.counts) == {key: count * copies for key, count in EXPECTED.items()}
    assert [(v.row, v.feature, v.reason, v.value) for v in result.violations[:3]] == [
        (1, "fare", MISSING_REQUIRED, "no value"),
        (1, "payment_type", UNKNOWN_CATEGORY, '"Bitcoin"'),
        (1, "trip_start_hour", OUT_OF_RANGE, "30"),
    ]
    # The markers inside a tf.Example are missing too, and a predict's `examples` input is one.
    marked = tf.train.Example()
    marked.features.feature["fare"].float_list.value.append(float("nan"))
    marked.features.feature["payment_type"].bytes_list.value.append(b"")
    marked.features.feature["trip_start_hour"].int64_list.value.append(-1)
    serialized = np.array([marked.SerializeToString()] * copies, dtype=object)
    expected = {(key, MISSING_REQUIRED): copies for key in RAW_DTYPES}
    assert dict(schema.check_inputs({"examples": serialized}).counts) == expected


def test_tf_examples_of_other_value_types_are_checked_and_unparsable_ones_left_to_the_model():
    schema = RequestSchema.from_text(RAW_SCHEMA, "raw.pbtxt")
    odd = tf.train.Example()  # fare as an int64 list: the op refuses it, Python reads it
    odd.features.feature["fare"].int64_list.value.append(5000)
    odd.features.feature["payment_type"].bytes_list.value.append(b"Cash")
    odd.features.feature["trip_start_hour"].int64_list.value.append(3)
    result = schema.check_examples(
        np.array([odd.SerializeToString()] * EXAMPLE_OP_MIN_ROWS, dtype=object)
    )
    assert dict(result.counts) == {("fare", OUT_OF_RANGE): EXAMPLE_OP_MIN_ROWS}
    assert (
        schema.check_examples(
            np.array([b"\xff not an example"] * EXAMPLE_OP_MIN_ROWS, dtype=object)
        )
        is None
    )


def test_the_curated_schema_checks_serving_features_and_passes_the_training_rows():
    schema = RequestSchema.read(str(SCHEMA_PATH))
    names = {rule.name for rule in schema.rules}
    assert "tips" not in names and "company" not in names  # label source; open domain
    assert set(features.RAW_FEATURE_DTYPES) - {"company"} <= names
    payment = next(rule for rule in schema.rules if rule.name == "payment_type")
    assert b"Credit Card" in payment.categories and payment.required
    rows = [
        features.raw_json_instance(row)
        for row in read_csv_rows(DATA_ROOT / "span-1" / "data.csv", limit=500)
    ]
    inputs = {
        key: np.array(
            [row[key].encode() if kind == "string" else row[key] for row in rows],
            dtype={"string": object, "int": np.int64, "float": np.float32}[kind],
        )
        for key, kind in features.RAW_FEATURE_DTYPES.items()
    }
    result = schema.check_inputs(inputs)
    assert (result.rows, dict(result.counts)) == (500, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('feature { name: "fare" type: FLOAT', r"bad\.pbtxt is not a usable .*Schema: 1:"),
        (
            'feature { name: "payment_type" type: BYTES domain: "payments" }',
            r"bad\.pbtxt .*feature payment_type names domain 'payments', which the schema does "
            "not define",
        ),
    ],
)
def test_a_schema_that_does_not_parse_is_named_with_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.pbtxt"
    path.write_text(text)
    with pytest.raises(SchemaFileError, match=message):
        RequestSchema.read(str(path))
    with pytest.raises(SchemaFileError, match=r"cannot read schema .*missing\.pbtxt"):
        RequestSchema.read(str(tmp_path / "missing.pbtxt"))


def test_the_metrics_page_shows_rows_and_violations_by_version_feature_and_reason():
    metrics = Metrics()
    metrics.count_schema_check("raw", 7, 4, EXPECTED)
    metrics.count_schema_check("raw", 7, 1, {("fare", OUT_OF_RANGE): 1})
    text = metrics.exposition()
    assert f"# TYPE {SCHEMA_VIOLATIONS} counter" in text
    assert f'{SCHEMA_CHECKED_ROWS}{{model_name="raw",version="7"}} 5' in text
    assert (
        f'{SCHEMA_VIOLATIONS}{{model_name="raw",version="7",feature="fare",reason="out_of_range"}} 3'
        in text
    )


# --- through the server ---------------------------------------------------------------------


def write_schema(version_dir, text: str) -> None:
    path = version_dir / SCHEMA_FILE
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)


@pytest.fixture(scope="module")
def schema_root(tmp_path_factory):
    """Model 'raw': version 1 carries its schema, 2 none, 3 one that does not parse; model
    'classifier' (tf.Example feature x) carries its schema."""
    root = tmp_path_factory.mktemp("schema_models")
    save_raw_features(str(root / "raw"), 1)
    for version in (2, 3):
        shutil.copytree(root / "raw" / "1", root / "raw" / str(version))
    write_schema(root / "raw" / "1", RAW_SCHEMA)
    write_schema(root / "raw" / "3", 'feature { name: "fare"')
    save_classifier(str(root / "classifier"), 1)
    write_schema(root / "classifier" / "1", X_SCHEMA)
    return root


def specs(root) -> list[ModelSpec]:
    return [
        ModelSpec(name="raw", base_path=str(root / "raw"), policy=VersionPolicy.ALL),
        ModelSpec(name="classifier", base_path=str(root / "classifier")),
    ]


def start(root, settings: RequestSchemaSettings | None = None) -> ModelServer:
    return ModelServer(
        specs(root), port=0, grpc_port=0, poll_seconds=0, access_log=False, request_schema=settings
    ).start()


@pytest.fixture(scope="module")
def default_server(schema_root):
    server = start(schema_root)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def strict_server(schema_root):
    server = start(schema_root, RequestSchemaSettings(strict=True))
    yield server
    server.stop()


def counted(server: ModelServer) -> dict[tuple, int]:
    """The schema counters on the metrics page: (name, label values...) -> value."""
    _, _, body = Http(server.port).call("GET", "/monitoring/prometheus/metrics")
    found = {}
    for name, labels, value in re.findall(r"^(\S+)\{(.*)\} (\d+)$", body.decode(), re.MULTILINE):
        if name in (SCHEMA_CHECKED_ROWS, SCHEMA_VIOLATIONS):
            found[(name, *re.findall(r'="([^"]*)"', labels))] = int(value)
    return found


def added(before: dict, after: dict) -> dict:
    return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)}


def violations(model: str, version: int, counts: dict) -> dict:
    return {
        (SCHEMA_VIOLATIONS, model, str(version), feature, reason): count
        for (feature, reason), count in counts.items()
    }


def test_default_mode_counts_rows_and_answers_as_a_version_without_a_schema(default_server):
    http = Http(default_server.port)
    before = counted(default_server)
    answers = {}
    for version in (1, 2, 3):
        path = f"/v1/models/raw/versions/{version}:predict"
        answers[version] = [
            http.call("POST", path, raw_body(ROWS)),
            http.call("POST", path, '{"signature_name": "serving_raw", "inputs": {"fare": [1]}}'),
        ]
    # Byte for byte what the unchecked versions answer: the predictions, and TF Serving's own
    # 400 for a request missing inputs (which the check does not pre-empt).
    for version in (2, 3):
        assert [(s, b) for s, _, b in answers[version]] == [(s, b) for s, _, b in answers[1]]
    assert answers[1][0][0] == 200 and answers[1][1][0] == 400
    assert added(before, counted(default_server)) == {
        (SCHEMA_CHECKED_ROWS, "raw", "1"): 4,
        **violations("raw", 1, EXPECTED),
    }
    statuses = default_server.manager.statuses("raw")
    assert [(s.version, s.state.value) for s in statuses] == [
        (3, "AVAILABLE"),
        (2, "AVAILABLE"),
        (1, "AVAILABLE"),
    ]


def test_tf_examples_classify_regress_and_multi_inference_count_each_row_once(default_server):
    http = Http(default_server.port)
    before = counted(default_server)
    b64 = [{"b64": base64.b64encode(data).decode()} for data in examples(ROWS)]
    status, _ = http.json("POST", "/v1/models/raw/versions/1:predict", {"instances": b64})
    assert status == 200
    rows = {"examples": [{"x": 9.0}, {"x": 1.0}]}
    assert http.json("POST", "/v1/models/classifier:classify", rows)[0] == 200
    assert (
        http.json("POST", "/v1/models/classifier:regress", {**rows, "signature_name": "regress_x"})[
            0
        ]
        == 200
    )
    request = inference_pb2.MultiInferenceRequest(
        input=example_input(
            [
                tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "x": tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
                        }
                    )
                )
                for value in (9.0, -9.0, 0.0)
            ]
        )
    )
    for signature, method in (
        ("", "tensorflow/serving/classify"),
        ("regress_x", "tensorflow/serving/regress"),
    ):
        task = request.tasks.add(model_spec=model_spec("classifier", signature))
        task.method_name = method
    with grpc.insecure_channel(f"127.0.0.1:{default_server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        assert len(stub.MultiInference(request, timeout=30).results) == 2
    assert added(before, counted(default_server)) == {
        (SCHEMA_CHECKED_ROWS, "raw", "1"): 4,
        **violations("raw", 1, EXPECTED),
        # classify 2 rows, regress 2, multi-inference 3 (once for its two tasks)
        (SCHEMA_CHECKED_ROWS, "classifier", "1"): 7,
        (SCHEMA_VIOLATIONS, "classifier", "1", "x", OUT_OF_RANGE): 4,
    }


def test_strict_mode_refuses_a_row_outside_the_schema_with_tf_servings_400(strict_server):
    http = Http(strict_server.port)
    status, headers, body = http.call(
        "POST", "/v1/models/raw/versions/1:predict", raw_body(ROWS[:2])
    )
    assert status == 400 and headers["Content-Type"] == "application/json"
    error = json.loads(body)
    assert list(error) == ["error"]
    assert error["error"].startswith(
        "Request rows are outside the schema of servable raw version 1 (--strict_request_schema): "
        "row 1: feature fare: missing required value (nan)"
    )
    assert (
        'row 1: feature payment_type: unknown category "Bitcoin", not in the schema\'s string '
        "domain payment_type" in error["error"]
    )
    # Rows inside the schema, and versions without one, are answered.
    assert http.call("POST", "/v1/models/raw/versions/1:predict", raw_body(ROWS[:1]))[0] == 200
    assert http.call("POST", "/v1/models/raw/versions/2:predict", raw_body(ROWS))[0] == 200
    status, payload = http.json(
        "POST", "/v1/models/classifier:classify", {"examples": [{"x": 1.0}, {"x": 9.0}]}
    )
    assert (status, payload) == (
        400,
        {
            "error": "Request rows are outside the schema of servable classifier version 1 "
            "(--strict_request_schema): row 1: feature x: out of range: 9.0 is outside the "
            "schema's range [-5, 5]"
        },
    )


def test_strict_mode_refuses_over_grpc_with_invalid_argument(strict_server):
    request = predict_pb2.PredictRequest(model_spec=model_spec("raw", "serving_raw"))
    request.model_spec.version.value = 1
    for key, array in columns(ROWS[2:3]).items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
    with grpc.insecure_channel(f"127.0.0.1:{strict_server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == (
        "Request rows are outside the schema of servable raw version 1 (--strict_request_schema): "
        "row 0: feature fare: out of range: 2000.0 is outside the schema's range [0, 1000]; "
        'row 0: feature payment_type: missing required value (""): the schema requires one in '
        "every row; row 0: feature trip_start_hour: missing required value (-1): the schema "
        "requires one in every row"
    )


def test_a_fallback_schema_checks_versions_without_a_usable_one_and_a_bad_one_is_named(
    schema_root, caplog
):
    fallback = RequestSchema.from_text(RAW_SCHEMA, "/etc/taxi/schema.pbtxt")
    with caplog.at_level(logging.INFO, logger="serving.request_schema"):
        server = start(schema_root, RequestSchemaSettings(fallback=fallback))
    try:
        bad = str(schema_root / "raw" / "3" / SCHEMA_FILE)
        (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert error.startswith(f"Servable raw version 3: schema {bad} is not a usable text ")
        assert error.endswith(
            "its requests are checked against --request_schema_file /etc/taxi/schema.pbtxt instead"
        )
        http = Http(server.port)
        for version in (1, 2, 3):
            http.call("POST", f"/v1/models/raw/versions/{version}:predict", raw_body(ROWS))
        found = counted(server)
        for version in (1, 2, 3):
            assert found[(SCHEMA_CHECKED_ROWS, "raw", str(version))] == 4
    finally:
        server.stop()


def test_warmup_requests_are_neither_counted_nor_refused(tmp_path):
    save_raw_features(str(tmp_path / "raw"), 1)
    write_schema(tmp_path / "raw" / "1", RAW_SCHEMA)
    write_warmup(
        tmp_path / "raw" / "1",
        [predict_log("raw", columns(ROWS[1:2]), signature="serving_raw")],
    )
    spec = ModelSpec(name="raw", base_path=str(tmp_path / "raw"))
    settings = RequestSchemaSettings(strict=True)
    with ModelServer(
        [spec], port=0, poll_seconds=0, access_log=False, request_schema=settings
    ) as server:
        assert [s.state.value for s in server.manager.statuses("raw")] == ["AVAILABLE"]
        assert counted(server) == {}
        assert (
            Http(server.port).call("POST", "/v1/models/raw:predict", raw_body(ROWS[1:2]))[0] == 400
        )
        assert counted(server)[(SCHEMA_CHECKED_ROWS, "raw", "1")] == 1


def test_cli_names_a_schema_file_that_does_not_parse(tmp_path, capsys):
    path = tmp_path / "schema.pbtxt"
    path.write_text("feature {")
    assert serve_main(["--request_schema_file", str(path), "--strict_request_schema"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --request_schema_file: schema {path} is not a usable text ")
