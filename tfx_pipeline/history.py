"""`python -m tfx_pipeline.history`: every pushed version with its run, data span, AUC and blessing.

Read from MLMD lineage (Pusher <- Trainer <- Transform <- ExampleGen, and Pusher <- Evaluator),
plus what the serving directory holds now: served, present, rolled back or gone.
"""

import argparse
import dataclasses
import datetime
import logging
import os
import sys
import warnings

from ml_metadata.proto import metadata_store_pb2

from tfx_pipeline.lineage import (
    INPUT_EVENTS,
    OUTPUT_EVENTS,
    artifacts_by_key,
    custom_property,
    producer,
    training_examples,
)


@dataclasses.dataclass(frozen=True)
class Push:
    version: int
    pushed_at: str
    run: str
    span: object
    auc: float | None
    blessed: bool
    destination: str
    on_disk: str
    model_id: int | None = None  # the Trainer's Model artifact in MLMD


def _span_of_model(store, model_id: int) -> object:
    examples = training_examples(store, model_id)
    return custom_property(examples[-1], "span") if examples else None


def _overall_auc(store, blessing_id: int) -> float | None:
    evaluator, _ = producer(store, blessing_id)
    if evaluator is None:
        return None
    outputs = artifacts_by_key(store, evaluator.id, OUTPUT_EVENTS)
    for evaluation in outputs.get("evaluation", []):
        from tfx_pipeline import summary as summary_lib

        values = summary_lib.metric_values(evaluation.uri)
        # The model is named "candidate" when a baseline was evaluated beside it.
        for model in ("candidate", ""):
            if ("overall", model, "auc") in values:
                return values[("overall", model, "auc")]
    return None


def _on_disk(destination: str, version: int, served: int | None) -> str:
    from tfx_pipeline.atomic_pusher import ROLLED_BACK_PREFIX

    base = os.path.dirname(destination)
    if os.path.isdir(destination):
        return "SERVED" if version == served else "present"
    if os.path.isdir(os.path.join(base, f"{ROLLED_BACK_PREFIX}{version}")):
        return "rolled back"
    return "gone"


def pushes(metadata_path: str, pipeline_name: str) -> list[Push]:
    """Every execution of the Pusher that pushed a model, oldest first."""
    if not os.path.exists(metadata_path):
        return []
    # TFX, TensorFlow and their log lines load here, after main() has quietened them.
    from tfx_pipeline import pipeline as pipeline_lib
    from tfx_pipeline import summary as summary_lib

    store = summary_lib.open_store(metadata_path)
    pipeline_context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_context is None:
        return []
    # Every orchestrator's Pusher executions: local runs and Airflow's legacy launcher alike.
    pusher_executions = [
        execution
        for execution in store.get_executions_by_context(pipeline_context.id)
        if summary_lib.node_id(store, execution.id, pipeline_name) == pipeline_lib.PUSHER
    ]
    found = []
    for execution in sorted(pusher_executions, key=lambda e: e.id):
        if execution.last_known_state != metadata_store_pb2.Execution.COMPLETE:
            continue  # cached executions repeat an earlier push
        outputs = artifacts_by_key(store, execution.id, OUTPUT_EVENTS)
        inputs = artifacts_by_key(store, execution.id, INPUT_EVENTS)
        for pushed in outputs.get("pushed_model", []):
            if custom_property(pushed, "pushed") != 1:
                continue
            runs = [
                c.name
                for c in store.get_contexts_by_execution(execution.id)
                if c.type in summary_lib.RUN_CONTEXT_TYPES
            ]
            model = inputs.get("model", [None])[0]
            blessing = inputs.get("model_blessing", [None])[0]
            found.append(
                Push(
                    version=int(custom_property(pushed, "pushed_version")),
                    pushed_at=datetime.datetime.fromtimestamp(
                        execution.create_time_since_epoch / 1000
                    ).isoformat(sep=" ", timespec="seconds"),
                    run=runs[0] if runs else "?",
                    span=_span_of_model(store, model.id) if model else None,
                    auc=_overall_auc(store, blessing.id) if blessing else None,
                    blessed=bool(blessing and custom_property(blessing, "blessed") == 1),
                    destination=str(custom_property(pushed, "pushed_destination")),
                    on_disk="",
                    model_id=model.id if model else None,
                )
            )
    present = [p.version for p in found if os.path.isdir(p.destination)]
    served = max(present) if present else None
    return [
        dataclasses.replace(p, on_disk=_on_disk(p.destination, p.version, served)) for p in found
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tfx_pipeline.history",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--output-dir", default="outputs", help="the runner's --output-dir (default: %(default)s)"
    )
    parser.add_argument("--pipeline-name", default="taxi", help="default: %(default)s")
    args = parser.parse_args(argv)
    # TensorFlow only reads files here; its import-time CUDA messages are noise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    metadata_path = os.path.join(args.output_dir, "metadata.sqlite")
    if not os.path.exists(metadata_path):
        print(
            f"error: no pipeline metadata at {metadata_path}; run the pipeline first",
            file=sys.stderr,
        )
        return 2
    found = pushes(metadata_path, args.pipeline_name)
    if not found:
        print("No model has been pushed yet.")
        return 0
    print(f"{'version':<12}{'pushed at':<21}{'span':>5}{'AUC':>8}  {'blessed':<8}{'now':<12}run")
    for push in found:
        auc = f"{push.auc:.4f}" if push.auc is not None else "-"
        print(
            f"{push.version:<12}{push.pushed_at:<21}{push.span!s:>5}{auc:>8}  "
            f"{'yes' if push.blessed else 'no':<8}{push.on_disk:<12}{push.run}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
