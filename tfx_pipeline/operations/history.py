"""Every pushed version with its run, data span, AUC and blessing (`python -m tfx_pipeline.history`).

Read from MLMD lineage (Pusher <- Trainer <- Transform <- ExampleGen, and Pusher <- Evaluator),
plus what the serving directory holds now: served, present, rolled back or gone, the version's
model card (docs/model_card.md) where it has one, and its live AUC on every newer span that landed
while it was served (reporting/live_quality.py).
"""

import argparse
import dataclasses
import datetime
import os
import sys
from typing import TYPE_CHECKING

from tfx_pipeline import layout, metadata
from tfx_pipeline.operations.arguments import add_output_arguments
from tfx_pipeline.problems import print_problems
from tfx_pipeline.reporting import console

if TYPE_CHECKING:  # it loads TensorFlow, which `--help` need not wait for
    from tfx_pipeline.reporting.live_quality import LiveQuality

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
    model_card: str | None = None  # the version's model_card.html, wherever the version is now
    live: tuple["LiveQuality", ...] = ()  # on each newly labelled span, oldest first


def _on_disk(destination: str, version: int, served: int | None) -> str:
    # Here, not at the top: the pusher's module loads TensorFlow, which `--help` need not wait for.
    from tfx_pipeline.components.atomic_pusher.push import ROLLED_BACK_PREFIX

    base = os.path.dirname(destination)
    if os.path.isdir(destination):
        return "SERVED" if version == served else "present"
    if os.path.isdir(os.path.join(base, f"{ROLLED_BACK_PREFIX}{version}")):
        return "rolled back"
    return "gone"


def _model_card(destination: str, version: int) -> str | None:
    """The version's HTML model card, in its folder or its rolled-back folder; None without."""
    from tfx_pipeline.components.atomic_pusher.model_card import CARD_HTML
    from tfx_pipeline.components.atomic_pusher.push import ROLLED_BACK_PREFIX

    rolled_back = os.path.join(os.path.dirname(destination), f"{ROLLED_BACK_PREFIX}{version}")
    for folder in (destination, rolled_back):
        if os.path.isfile(os.path.join(folder, CARD_HTML)):
            return os.path.join(folder, CARD_HTML)
    return None


def pushes(metadata_path: str, pipeline_name: str) -> list[Push]:
    """Every execution of the Pusher that pushed a model, oldest first."""
    if not os.path.exists(metadata_path):
        return []
    # TensorFlow and TFMA load here, after main() has quietened them.
    from tfx_pipeline.reporting import live_quality
    from tfx_pipeline.reporting.evaluation import overall_auc

    store = metadata.open_store(metadata_path)
    live_by_version = live_quality.by_version(store, pipeline_name)
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
                # A version pushed again (an identical model) lists its measurements once.
                live=tuple(live_by_version.pop(record.version, [])),
            )
        )
    present = [p.version for p in found if os.path.isdir(p.destination)]
    served = max(present) if present else None
    return [
        dataclasses.replace(
            p,
            on_disk=_on_disk(p.destination, p.version, served),
            model_card=_model_card(p.destination, p.version),
        )
        for p in found
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfx_pipeline.history",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_output_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console.quiet_libraries()
    metadata_path = layout.OutputLayout(args.output_dir).metadata_path
    if not metadata_path.exists():
        return print_problems([f"no pipeline metadata at {metadata_path}; run the pipeline first"])
    found = pushes(str(metadata_path), args.pipeline_name)
    # Loaded with TensorFlow by pushes() already.
    from tfx_pipeline.reporting.live_quality import describe as describe_live

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
        if push.model_card:
            print(f"{'':<12}card: {push.model_card}")
        for live in push.live:
            print(f"{'':<12}live: {describe_live(live, with_version=False)}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
