"""Every pushed version with its run, data span, AUC and blessing (`python -m tfx_pipeline.history`).

Read from MLMD lineage (Pusher <- Trainer <- Transform <- ExampleGen, and Pusher <- Evaluator),
plus what the serving directory holds now: served, present, rolled back or gone.
"""

import argparse
import dataclasses
import datetime
import logging
import os
import pathlib
import sys
import warnings

from tfx_pipeline import config as config_lib
from tfx_pipeline import layout, metadata
from tfx_pipeline.problems import print_problems

EXIT_OK = 0


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


def _on_disk(destination: str, version: int, served: int | None) -> str:
    # Here, not at the top: the pusher's module loads TensorFlow, which `--help` need not wait for.
    from tfx_pipeline.components.atomic_pusher.push import ROLLED_BACK_PREFIX

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
    # TensorFlow and TFMA load here, after main() has quietened them.
    from tfx_pipeline.reporting.evaluation import overall_auc

    store = metadata.open_store(metadata_path)
    found = []
    for record in metadata.pushed_models(store, pipeline_name):
        examples = metadata.training_examples(store, record.model_id) if record.model_id else []
        evaluation = (
            metadata.evaluation_of_blessing(store, record.blessing_id)
            if record.blessing_id
            else None
        )
        found.append(
            Push(
                version=record.version,
                pushed_at=datetime.datetime.fromtimestamp(record.pushed_at_millis / 1000).isoformat(
                    sep=" ", timespec="seconds"
                ),
                run=record.run,
                span=metadata.custom_property(examples[-1], "span") if examples else None,
                auc=overall_auc(evaluation.uri) if evaluation else None,
                blessed=record.blessed,
                destination=record.destination,
                on_disk="",
                model_id=record.model_id,
            )
        )
    present = [p.version for p in found if os.path.isdir(p.destination)]
    served = max(present) if present else None
    return [
        dataclasses.replace(p, on_disk=_on_disk(p.destination, p.version, served)) for p in found
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfx_pipeline.history",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--output-dir",
        type=pathlib.Path,
        default=layout.DEFAULT_OUTPUT_DIR,
        help="the runner's --output-dir (default: %(default)s)",
    )
    parser.add_argument(
        "--pipeline-name", default=config_lib.LOCAL_PIPELINE_NAME, help="default: %(default)s"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # TensorFlow only reads files here; its import-time CUDA messages are noise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    metadata_path = layout.OutputLayout(args.output_dir).metadata_path
    if not metadata_path.exists():
        return print_problems([f"no pipeline metadata at {metadata_path}; run the pipeline first"])
    found = pushes(str(metadata_path), args.pipeline_name)
    if not found:
        print("No model has been pushed yet.")
        return EXIT_OK
    print(f"{'version':<12}{'pushed at':<21}{'span':>5}{'AUC':>8}  {'blessed':<8}{'now':<12}run")
    for push in found:
        auc = f"{push.auc:.4f}" if push.auc is not None else "-"
        print(
            f"{push.version:<12}{push.pushed_at:<21}{push.span!s:>5}{auc:>8}  "
            f"{'yes' if push.blessed else 'no':<8}{push.on_disk:<12}{push.run}"
        )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
