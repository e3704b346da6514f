"""Compiles the taxi pipeline for Vertex AI Pipelines (KubeflowV2DagRunner) and submits it.

The same `create_pipeline` factory as local_runner.py; here artifacts live under a gs:// pipeline
root, every component runs in the pipeline image (see Dockerfile), Beam-based components can run
on Dataflow, and Tuner/Trainer can run as Vertex AI custom jobs. `--compile-only` writes the
pipeline JSON and sends nothing, so it works offline. Submitting uses google-cloud-aiplatform's
PipelineJob with Application Default Credentials (`gcloud auth application-default login`, or
GOOGLE_APPLICATION_CREDENTIALS pointing at a service-account key).
"""

import sys

from tfx_pipeline.problems import ConfigProblems, print_problems
from tfx_pipeline.runners import vertex


def main(argv: list[str] | None = None) -> int:
    args = vertex.build_parser(description=__doc__).parse_args(argv)
    try:
        config = vertex.pipeline_config(args)
    except ConfigProblems as problems:
        return print_problems(problems.problems)
    return vertex.compile_and_submit(args, config)


if __name__ == "__main__":
    sys.exit(main())
