"""`python -m serving`: serve the pushed models over TF Serving's gRPC API on 127.0.0.1:8500 and
its REST API on 127.0.0.1:8501.

Flags keep tensorflow_model_server's names where it has them, so one command line and one
models.config work with both servers.
"""

import argparse
import logging
import os
import re
import signal
import sys
import threading

DEFAULT_BASE_PATH = os.path.join("outputs", "serving", "taxi")
BATCHING_FIELD = re.compile(r"^\s*(\w+)\s*(?::\s*(\S+)|\{\s*value\s*:\s*(\S+)\s*\})\s*$")
BATCHING_FIELDS = {
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
}
IGNORED_BATCHING_FIELDS = {"thread_pool_name", "allowed_batch_sizes", "pad_variable_length_inputs"}
INT32_MAX = 2**31 - 1  # tensorflow_model_server's int flags are int32


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    models = parser.add_argument_group("models (as tensorflow_model_server)")
    models.add_argument(
        "--model_name", default="taxi", help="served model name (default: %(default)s)"
    )
    models.add_argument(
        "--model_base_path",
        default=DEFAULT_BASE_PATH,
        help="folder of integer version folders (default: the pipeline's push directory, %(default)s)",
    )
    models.add_argument(
        "--model_config_file",
        help="ModelServerConfig text proto (several models, version policies, labels); "
        "overrides --model_name/--model_base_path",
    )
    models.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="how often base paths are checked for new versions; 0 checks only at start (default: 1)",
    )
    network = parser.add_argument_group("network")
    network.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s; 0.0.0.0 exposes the server to the network)",
    )
    network.add_argument(
        "--max_request_bytes",
        type=int,
        default=16 * 1024 * 1024,
        help="larger request bodies and gRPC messages are refused (default: 16 MiB)",
    )
    grpc = parser.add_argument_group("gRPC (as tensorflow_model_server)")
    grpc.add_argument(
        "--port",
        type=int,
        default=8500,
        help="gRPC port; 0 serves gRPC only on --grpc_socket_path (default: %(default)s)",
    )
    grpc.add_argument("--grpc_socket_path", help="also serve gRPC on this UNIX socket")
    grpc.add_argument(
        "--grpc_max_threads",
        type=int,
        default=32,
        help="threads answering gRPC calls; with batching, at most this many calls wait "
        "for a batch at once (default: %(default)s)",
    )
    http = parser.add_argument_group("HTTP/REST")
    http.add_argument(
        "--rest_api_port",
        type=int,
        default=8501,
        help="REST port; 0 serves no REST API, as tensorflow_model_server (default: %(default)s)",
    )
    http.add_argument(
        "--rest_api_num_threads", type=int, default=8, help="worker threads (default: %(default)s)"
    )
    http.add_argument(
        "--rest_api_timeout_in_ms",
        type=int,
        default=30000,
        help="a REST call still unanswered after this long gets 504 DEADLINE_EXCEEDED "
        "(default: %(default)s)",
    )
    http.add_argument(
        "--rest_api_max_connections",
        type=int,
        default=1000,
        help="open HTTP connections beyond this are closed at once (default: %(default)s)",
    )
    http.add_argument(
        "--rest_api_enable_cors_support",
        action="store_true",
        help="add CORS headers (any origin, POST and GET) to every REST answer",
    )
    http.add_argument("--no_access_log", action="store_true", help="do not log every request")
    batching = parser.add_argument_group("batching (as tensorflow_model_server)")
    batching.add_argument(
        "--enable_batching", action="store_true", help="batch concurrent predict calls"
    )
    batching.add_argument(
        "--batching_parameters_file",
        help="BatchingParameters text proto: max_batch_size, batch_timeout_micros, "
        "max_enqueued_batches, num_batch_threads",
    )
    warmup = parser.add_argument_group("warmup (as tensorflow_model_server)")
    warmup.add_argument(
        "--enable_model_warmup",
        type=flag_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="true|false",
        help="before a version serves, replay the requests in its "
        "assets.extra/tf_serving_warmup_requests (TFRecord of PredictionLog, at most 1000), "
        "so the first real request is not slowed by lazy initialization (default: true)",
    )
    warmup.add_argument(
        "--num_request_iterations_for_warmup",
        type=int,
        metavar="N",
        default=1,
        help="times each warmup request is replayed; 0 means once, as in "
        "tensorflow_model_server (default: %(default)s)",
    )
    request_log = parser.add_argument_group(
        "request logging (for monitoring; a model's logging_config in --model_config_file "
        "overrides the rate and file prefix for that model)"
    )
    request_log.add_argument(
        "--request_log_dir",
        help="log sampled predict requests (raw features, model version, time, prediction) "
        "as tf.Example TFRecord files here; off when not set",
    )
    request_log.add_argument(
        "--request_log_sampling_rate",
        type=float,
        default=1.0,
        help="fraction of predict requests logged, 0 to 1 (default: %(default)s)",
    )
    request_log.add_argument(
        "--request_log_max_file_bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="a log file is completed once it is this large (default: 64 MiB)",
    )
    request_log.add_argument(
        "--request_log_max_file_seconds",
        type=float,
        default=300.0,
        help="a log file is completed once it is this old (default: %(default)s)",
    )
    request_log.add_argument(
        "--request_log_queue_size",
        type=int,
        default=10000,
        help="requests waiting for the log writer; beyond this they are dropped from the log "
        "and counted (default: %(default)s)",
    )
    request_log.add_argument(
        "--request_log_file_mode",
        default="0600",
        help="permissions of the log files, which hold raw features: octal, e.g. 0640 lets the "
        "group read them; set exactly, whatever the umask (default: %(default)s)",
    )
    schema = parser.add_argument_group(
        "request schema check (rows outside a version's assets.extra/schema.pbtxt, which the "
        "pipeline's Pusher writes, are counted per feature and reason in "
        ":tensorflow:serving:rest:request_schema_violation_count; answers are unchanged)"
    )
    schema.add_argument(
        "--request_schema_file",
        metavar="SCHEMA_PBTXT",
        help="text tensorflow_metadata Schema to check the requests of versions that carry "
        "no schema of their own against (default: those versions are not checked)",
    )
    schema.add_argument(
        "--strict_request_schema",
        action="store_true",
        help="refuse a request with a row outside the schema: HTTP 400 (gRPC INVALID_ARGUMENT) "
        "naming the row, the feature, the reason and the value",
    )
    return parser


def flag_bool(text: str) -> bool:
    """A bool flag's value as tensorflow_model_server parses it: true/false (any case), 1/0."""
    if text.lower() == "true" or text == "1":
        return True
    if text.lower() == "false" or text == "0":
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def request_log_settings(args: argparse.Namespace):
    """The request log flags as RequestLogSettings (its directory None when no folder is given:
    then only models whose logging_config asks for it are logged, with these settings).

    Raises ValueError naming every bad request log flag at once.
    """
    from serving.request_log import DEFAULT_FILE_MODE, RequestLogSettings, parse_file_mode

    problems = []
    try:
        file_mode = parse_file_mode(args.request_log_file_mode)
    except ValueError as error:
        problems.append(str(error))
        file_mode = DEFAULT_FILE_MODE  # still checks the other flags
    try:
        settings = RequestLogSettings(
            directory=os.path.abspath(args.request_log_dir) if args.request_log_dir else None,
            sampling_rate=args.request_log_sampling_rate,
            max_file_bytes=args.request_log_max_file_bytes,
            max_file_seconds=args.request_log_max_file_seconds,
            queue_size=args.request_log_queue_size,
            file_mode=file_mode,
        )
    except ValueError as error:
        problems.append(str(error))
    if problems:
        raise ValueError("; ".join(problems))
    return settings


def request_schema_settings(args: argparse.Namespace):
    """The schema check flags as RequestSchemaSettings; raises ValueError (SchemaFileError) when
    --request_schema_file cannot be read or parsed."""
    from serving.request_schema import RequestSchema, RequestSchemaSettings, SchemaFileError

    fallback = None
    if args.request_schema_file:
        try:
            fallback = RequestSchema.read(os.path.abspath(args.request_schema_file))
        except SchemaFileError as error:
            raise ValueError(f"--request_schema_file: {error}") from None
    return RequestSchemaSettings(fallback=fallback, strict=args.strict_request_schema)


def read_batching_parameters(path: str):
    """Reads the BatchingParameters fields this server honours from TF Serving's text format."""
    from serving.batching import BatchingParameters

    values = {}
    try:
        lines = open(path).read().splitlines()
    except OSError as error:
        raise ValueError(f"cannot read batching parameters file {path}: {error.strerror}") from None
    for number, line in enumerate(lines, start=1):
        line = line.split("#", 1)[0]
        if not line.strip():
            continue
        match = BATCHING_FIELD.match(line)
        if not match:
            raise ValueError(
                f"{path}:{number}: expected `field {{ value: N }}`, got {line.strip()!r}"
            )
        field, plain, wrapped = match.groups()
        if field in IGNORED_BATCHING_FIELDS:
            logging.getLogger(__name__).warning("%s: %s is accepted but not used here", path, field)
            continue
        if field not in BATCHING_FIELDS:
            raise ValueError(f"{path}:{number}: unknown batching parameter {field!r}")
        try:
            values[field] = int(plain or wrapped)
        except ValueError:
            raise ValueError(f"{path}:{number}: {field} must be a whole number") from None
    return BatchingParameters(**values)


def usage_problems(args: argparse.Namespace) -> list[str]:
    """Every problem with the flags themselves, to report together before anything loads."""
    problems = []
    if args.batching_parameters_file and not args.enable_batching:
        problems.append(
            "--batching_parameters_file is set without --enable_batching "
            "(tensorflow_model_server refuses this too)"
        )
    for name in ("port", "rest_api_port"):
        if not 0 <= getattr(args, name) <= 65535:
            problems.append(f"--{name} must be a port number (0-65535)")
    if args.port == 0 and not args.grpc_socket_path:
        problems.append(
            "--port 0 needs --grpc_socket_path (tensorflow_model_server always serves gRPC)"
        )
    if args.port and args.port == args.rest_api_port:
        problems.append(f"--port and --rest_api_port are both {args.port}")
    for name in (
        "rest_api_num_threads",
        "max_request_bytes",
        "grpc_max_threads",
        "rest_api_timeout_in_ms",
        "rest_api_max_connections",
    ):
        if getattr(args, name) < 1:
            problems.append(f"--{name} must be positive")
    if not 0 <= args.num_request_iterations_for_warmup <= INT32_MAX:
        problems.append(
            "--num_request_iterations_for_warmup must be 0 (replay once, as "
            f"tensorflow_model_server) or a number of replays up to {INT32_MAX}"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    problems = usage_problems(args)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from serving import config
    from serving.app import ServerSettings
    from serving.batching import BatchingParameters
    from serving.grpc_api import GrpcSettings
    from serving.server import ModelServer
    from serving.warmup import WarmupSettings

    try:
        if args.model_config_file:
            specs = config.load_config_file(args.model_config_file)
        else:
            specs = config.single_model(args.model_name, args.model_base_path)
        request_log = request_log_settings(args)
        batching = None
        if args.enable_batching:
            batching = (
                read_batching_parameters(args.batching_parameters_file)
                if args.batching_parameters_file
                else BatchingParameters()
            )
        request_schema = request_schema_settings(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for spec in specs:
        if not os.path.isdir(spec.base_path):
            logging.warning(
                "No versions of servable %s found under base path %s (it does not exist yet); "
                "serving it as soon as a version appears",
                spec.name,
                spec.base_path,
            )
    settings = ServerSettings(
        max_request_bytes=args.max_request_bytes,
        num_threads=args.rest_api_num_threads,
        batching=batching,
        request_timeout_seconds=args.rest_api_timeout_in_ms / 1000,
        max_connections=args.rest_api_max_connections,
        enable_cors=args.rest_api_enable_cors_support,
    )
    grpc_settings = GrpcSettings(
        max_message_bytes=args.max_request_bytes, max_threads=args.grpc_max_threads
    )
    try:
        server = ModelServer(
            specs,
            host=args.host,
            port=args.rest_api_port or None,
            settings=settings,
            poll_seconds=args.file_system_poll_wait_seconds,
            access_log=not args.no_access_log,
            request_log=request_log,
            grpc_port=args.port or None,
            grpc_settings=grpc_settings,
            grpc_socket_path=args.grpc_socket_path,
            warmup=WarmupSettings(
                enabled=args.enable_model_warmup,
                request_iterations=args.num_request_iterations_for_warmup,
            ),
            request_schema=request_schema,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        server.start()
    except OSError as error:
        print(f"error: cannot listen: {error.strerror or error}", file=sys.stderr)
        return 1
    for spec in specs:
        versions = server.manager.loaded_versions(spec.name)
        logging.info(
            "model %s: serving versions %s from %s",
            spec.name,
            versions or "none yet",
            spec.base_path,
        )
    if server.request_log is not None and request_log.directory is not None:
        logging.info(
            "logging %g of predict requests to %s", request_log.sampling_rate, request_log.directory
        )
    endpoints = []
    if server.port is not None:
        endpoints.append(f"REST on {server.url}")
    if server.grpc_port is not None:
        endpoints.append(f"gRPC on {args.host}:{server.grpc_port}")
    if args.grpc_socket_path:
        endpoints.append(f"gRPC on unix:{args.grpc_socket_path}")
    print(f"Serving {' and '.join(endpoints)} (Ctrl-C to stop)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
