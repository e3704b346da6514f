"""Where things live on disk: the bundled files, the data root's span folders, the output directory.

The runners, the watch loop, the monitor and the history tool all take these paths from here.
Nothing in this module imports TensorFlow or TFX (the watch loop stays small).
"""

import dataclasses
import pathlib
import re

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
BUNDLED_DATA_ROOT = REPO_ROOT / "data" / "taxi"
CURATED_SCHEMA = REPO_ROOT / "data" / "schema" / "schema.pbtxt"
ANOMALY_POLICY = REPO_ROOT / "data" / "schema" / "anomaly_policy.json"
MONITORING_CONFIG = REPO_ROOT / "data" / "schema" / "monitoring.json"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "outputs"

# A span is a folder `span-N` of CSV files under the data root. ExampleGen resolves the newest
# with TFX's pattern; the runner and the watch loop find the same folder with the expression.
SPAN_PATTERN = "span-{SPAN}/*"
SPAN_FOLDER = re.compile(r"^span-(\d+)$")


def span_folders(data_root: pathlib.Path) -> dict[int, pathlib.Path]:
    """The span-N folders under `data_root` by N; raises OSError when it cannot be listed."""
    return {
        int(match.group(1)): child
        for child in data_root.iterdir()
        if child.is_dir() and (match := SPAN_FOLDER.match(child.name))
    }


def misnamed_span_folders(data_root: pathlib.Path) -> list[pathlib.Path]:
    """Folders TFX's span pattern matches whose name holds no span number (`span-x`).

    ExampleGen fails on them ("Cannot find span number"), so the runner refuses them up front.
    """
    return sorted(
        child
        for child in data_root.iterdir()
        if child.is_dir() and child.name.startswith("span-") and not SPAN_FOLDER.match(child.name)
    )


def latest_span_number(data_root: pathlib.Path) -> int | None:
    """The highest N of the span-N folders under `data_root`; None when there is none (or no folder)."""
    try:
        return max(span_folders(data_root), default=None)
    except OSError:
        return None


@dataclasses.dataclass(frozen=True)
class OutputLayout:
    """What a pipeline run writes under its output directory (`local_runner.py --output-dir`)."""

    root: pathlib.Path

    @property
    def metadata_path(self) -> pathlib.Path:
        """The MLMD database (SQLite) of every run on this output directory."""
        return self.root / "metadata.sqlite"

    @property
    def pipeline_root(self) -> pathlib.Path:
        """Component outputs (artifacts)."""
        return self.root / "pipeline_root"

    @property
    def logs_dir(self) -> pathlib.Path:
        """Full TFX/TensorFlow/Beam logs of each run, and each watch cycle's run output."""
        return self.root / "logs"

    @property
    def reports_dir(self) -> pathlib.Path:
        """Per-run reports for people (the evaluation report)."""
        return self.root / "reports"

    @property
    def serving_dir(self) -> pathlib.Path:
        """The TF Serving model root when the runner is given no --serving-dir."""
        return self.root / "serving"

    @property
    def monitoring_dir(self) -> pathlib.Path:
        """The skew monitor's reports."""
        return self.root / "monitoring"

    @property
    def triggers_dir(self) -> pathlib.Path:
        """Alerts the monitor writes and the watch loop consumes (then moves into `consumed/`)."""
        return self.monitoring_dir / "triggers"

    @property
    def notifications_dir(self) -> pathlib.Path:
        """What the watch loop has notified already (how many lines of the rollback log)."""
        return self.root / "notifications"

    @property
    def lock_path(self) -> pathlib.Path:
        """Held by the run (or watch loop) using this output directory."""
        return self.root / ".pipeline.lock"
