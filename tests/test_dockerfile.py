"""The pipeline image (Dockerfile) installs the same lock file as `make setup`.

Docker cannot run here; what can be checked is what the image is built from: the Python and
Beam versions it names, the lock file it installs with, the code and schema it copies, and that
the lock file pins every package of the environment the tests run in.
"""

import importlib.metadata
import pathlib
import re
import sys
import tomllib

from tfx_pipeline.runners import vertex

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()


def pins() -> dict[str, str]:
    lines = (REPO_ROOT / "constraints.txt").read_text().splitlines()
    pairs = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {canonical(name): version for name, version in pairs}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def instructions(keyword: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(keyword)]


def test_python_and_beam_versions_match_the_lock_file():
    (base,) = [image for image in instructions("FROM ") if "python:" in image]
    assert base.startswith(f"python:{sys.version_info.major}.{sys.version_info.minor}-")
    (beam_copy,) = [source for source in instructions("COPY --from=")]
    assert f"apache/beam_python3.11_sdk:{pins()['apache-beam']} " in beam_copy


def test_the_image_installs_the_project_with_the_lock_file():
    (install,) = [run for run in instructions("RUN ") if "pip install" in run]
    assert "-c constraints.txt" in install and "--ignore-requires-python" in install
    copied = " ".join(instructions("COPY "))
    assert "constraints.txt" in copied and "pyproject.toml" in copied
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    for package in setuptools["packages"]:
        assert f"{package}/ {package}/" in copied, package
    for module in setuptools["py-modules"]:
        assert f"{module}.py" in copied, module


def test_the_schema_vertex_points_at_is_in_the_image():
    (workdir,) = instructions("WORKDIR ")
    assert "data/schema/ data/schema/" in " ".join(instructions("COPY "))
    schema_in_image = pathlib.PurePosixPath(workdir) / "data" / "schema" / "schema.pbtxt"
    assert str(schema_in_image) == vertex.IMAGE_SCHEMA_PATH
    assert (REPO_ROOT / "data" / "schema" / "schema.pbtxt").is_file()


def test_the_lock_file_pins_every_installed_package_at_its_installed_version():
    locked = pins()
    own = {"taxi-tfx-pipeline", "pip", "setuptools", "wheel"}
    mismatches = []
    for dist in importlib.metadata.distributions():
        name = canonical(dist.metadata["Name"])
        if name in own:
            continue
        if locked.get(name) != dist.version:
            mismatches.append(f"{name} installed {dist.version}, locked {locked.get(name)}")
    assert not mismatches, mismatches


def test_local_artifacts_stay_out_of_the_build_context():
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", "outputs", ".git"} <= set(ignored)
