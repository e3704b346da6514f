# The pipeline image: Vertex AI Pipelines steps, Vertex AI training jobs and Dataflow workers all
# run it, so every place executes the same pinned stack and the same project code.
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/taxi-pipeline:TAG .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/taxi-pipeline:TAG
# Python 3.11: the version every compiled part of the TFX 1.16 stack ships wheels for.
FROM python:3.11-slim-bookworm

# Beam's SDK harness launcher, so Dataflow can use this image as a custom worker container
# (--sdk_container_image); its version must be the pinned apache-beam's.
COPY --from=apache/beam_python3.11_sdk:2.59.0 /opt/apache/beam /opt/apache/beam

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_USE_LEGACY_KERAS=1

WORKDIR /pipeline
COPY constraints.txt pyproject.toml README.md ./
COPY models/ models/
COPY tfx_pipeline/ tfx_pipeline/
COPY serving/ serving/
COPY local_runner.py vertex_runner.py ./
# The curated schema and data policy; vertex_runner.py points ImportSchemaGen at this copy.
COPY data/schema/ data/schema/

# The same lock file as `make setup`: TFX 1.16 declares Python <3.11, hence the flag.
RUN pip install --no-cache-dir --ignore-requires-python -c constraints.txt . \
    && pip check

# Dataflow starts workers through Beam's boot; Vertex AI overrides the command per step.
ENTRYPOINT ["/opt/apache/beam/boot"]
