"""The pipeline image (Dockerfile) installs the same lock file with the same installer as `make setup`.

Docker cannot run here; what can be checked is what the image is built from: the Python and
Beam versions it names, the installer and lock file it installs with, the code and schema it
copies, and that the lock file pins every package of the environment the tests run in.
"""

import importlib.metadata
import pathlib
import re
import sys
import tomllib

from tfx_pipeline.runners import vertex

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
MAKEFILE = (REPO_ROOT / "Makefile").read_text()
# A uv version written anywhere but the lock file: uv==0.9, uv@0.9, ghcr.io/astral-sh/uv:0.9.
UV_VERSION_ELSEWHERE = re.compile(r"\buv\s*(==|@|:)\s*v?[0-9]")


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


def makefile_uv_install() -> list[list[str]]:
    """The words of each command `make setup` installs with when INSTALLER=uv."""
    joined = MAKEFILE.replace("\\\n", " ")
    branch = joined.split("ifeq ($(INSTALLER),uv)", 1)[1].split("else", 1)[0]
    (install,) = [line for line in branch.splitlines() if line.startswith("INSTALL :=")]
    return [command.split() for command in install.removeprefix("INSTALL :=").split("&&")]


def project_packages() -> list[str]:
    """Top-level packages pyproject.toml ships, whether listed or found by setuptools."""
    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = setuptools.get("packages", [])
    if isinstance(listed, dict):  # [tool.setuptools.packages.find]
        listed = listed.get("find", {}).get("include", [])
    return sorted({name.split(".")[0].rstrip("*") for name in listed})


def test_the_image_installs_with_the_installer_and_lock_file_of_make_setup():
    assert re.search(r"^INSTALLER \?= uv$", MAKEFILE, re.MULTILINE), "make setup's default"
    (install,) = [run for run in instructions("RUN ") if "uv pip install" in run]
    bootstrap, uv_install, check = [command.split() for command in install.split("&&")]
    make_bootstrap, make_uv_install = makefile_uv_install()
    # Both bring in uv with pip at the version constraints.txt pins; no other file names one.
    for command in (bootstrap, make_bootstrap):
        assert command[-3:] == ["-c", "constraints.txt", "uv"], command
    assert "uv" in pins()
    github = sorted((REPO_ROOT / ".github").rglob("*.yml"))
    for path in [REPO_ROOT / "Dockerfile", REPO_ROOT / "Makefile", *github]:
        assert not UV_VERSION_ELSEWHERE.search(path.read_text()), path
    # Then uv installs the project against the lock file with make setup's options; only the
    # target differs: the venv's interpreter there, the image's system Python here.
    assert uv_install[:3] == ["uv", "pip", "install"] and "--system" in uv_install
    assert "-c constraints.txt" in " ".join(uv_install)
    make_options = {word for word in make_uv_install if word.startswith("--")} - {"--python"}
    assert make_options <= set(uv_install), make_options - set(uv_install)
    assert check[-3:] == ["pip", "check", "--system"]


def test_the_image_copies_the_project_it_installs():
    copied = " ".join(instructions("COPY "))
    assert "constraints.txt" in copied and "pyproject.toml" in copied
    packages = project_packages()
    assert packages
    for package in packages:
        assert f"{package}/ {package}/" in copied, package
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    for module in project["tool"]["setuptools"].get("py-modules", []):
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
