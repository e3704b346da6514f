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

# The same installer and lock file as `make setup`: pip brings in uv at the version constraints.txt
# pins, uv installs the project with every pin (TFX 1.16's Requires-Python <3.11 does not stop it)
# and checks that the installed set is consistent. Bytecode is written now, since
# PYTHONDONTWRITEBYTECODE keeps every container from writing it at start-up.
RUN pip install --no-cache-dir -c constraints.txt uv \
    && uv pip install --system --no-cache --compile-bytecode -c constraints.txt . \
    && uv pip check --system

# Dataflow starts workers through Beam's boot; Vertex AI overrides the command per step.
ENTRYPOINT ["/opt/apache/beam/boot"]
