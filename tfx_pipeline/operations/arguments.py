"""The flags every operator command shares: which output directory, which pipeline in it."""

import argparse
import pathlib

from tfx_pipeline import config as config_lib
from tfx_pipeline import layout


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """--output-dir (the runner's) and --pipeline-name, with the local runner's defaults."""
    parser.add_argument(
        "--output-dir",
        type=pathlib.Path,
        default=layout.DEFAULT_OUTPUT_DIR,
        help="the runner's --output-dir (default: %(default)s)",
    )
    parser.add_argument(
        "--pipeline-name", default=config_lib.LOCAL_PIPELINE_NAME, help="default: %(default)s"
    )
