"""The layers the folders promise, held by the imports: who may import whom, what stays TFX-free, what stays light.

Fast (it reads source, and imports a few light modules in subprocesses): the pre-commit hook
runs it on every commit.
"""

import ast
import pathlib
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = "tfx_pipeline"
# Shared by every layer: problem reporting, paths, node ids, and the drift statistics (used by
# the data gate and the monitor alike).
FOUNDATION = (
    "tfx_pipeline.problems",
    "tfx_pipeline.layout",
    "tfx_pipeline.node_ids",
    "tfx_pipeline.drift",
)
# Each layer (a module or folder of tfx_pipeline) and what it may import from tfx_pipeline.
# Components import only the foundation and their own folder; checked separately below.
ALLOWED = {
    "tfx_pipeline.problems": (),
    "tfx_pipeline.layout": (),
    "tfx_pipeline.node_ids": (),
    "tfx_pipeline.drift": (),
    "tfx_pipeline.metadata": FOUNDATION,
    "tfx_pipeline.metrics": (),
    "tfx_pipeline.resolvers": (*FOUNDATION, "tfx_pipeline.metadata", "tfx_pipeline.resolvers"),
    "tfx_pipeline.inputs": (*FOUNDATION, "tfx_pipeline.components.data_gate.policy"),
    "tfx_pipeline.cloud": FOUNDATION,
    "tfx_pipeline.notifications": FOUNDATION,
    "tfx_pipeline.config": (
        *FOUNDATION,
        "tfx_pipeline.cloud",
        "tfx_pipeline.components.data_gate.policy",
        "tfx_pipeline.components.infra_validator.servers",
        "tfx_pipeline.components.gated_evaluator.rules",
    ),
    "tfx_pipeline.pipeline": (
        *FOUNDATION,
        "tfx_pipeline.config",
        "tfx_pipeline.cloud",
        "tfx_pipeline.components",
        "tfx_pipeline.metrics",
        "tfx_pipeline.resolvers",
    ),
    "tfx_pipeline.reporting": (
        *FOUNDATION,
        "tfx_pipeline.metadata",
        "tfx_pipeline.components",
        "tfx_pipeline.reporting",
    ),
    "tfx_pipeline.operations": (
        *FOUNDATION,
        "tfx_pipeline.metadata",
        "tfx_pipeline.inputs",
        "tfx_pipeline.config",
        "tfx_pipeline.components",
        "tfx_pipeline.reporting",
        "tfx_pipeline.operations",
        "tfx_pipeline.notifications",
        "tfx_pipeline.runners.exit_codes",
    ),
    "tfx_pipeline.runners": (
        *FOUNDATION,
        "tfx_pipeline.metadata",
        "tfx_pipeline.inputs",
        "tfx_pipeline.config",
        "tfx_pipeline.cloud",
        "tfx_pipeline.pipeline",
        "tfx_pipeline.reporting",
        "tfx_pipeline.operations",
        "tfx_pipeline.notifications",
        "tfx_pipeline.runners",
    ),
    # `python -m tfx_pipeline.monitor`, `.history`, `.report`, `.runs`, `.explain`: the commands.
    "tfx_pipeline.monitor": ("tfx_pipeline.operations.monitor",),
    "tfx_pipeline.history": ("tfx_pipeline.operations.history",),
    "tfx_pipeline.report": ("tfx_pipeline.operations.report",),
    "tfx_pipeline.runs": ("tfx_pipeline.operations.runs",),
    "tfx_pipeline.explain": ("tfx_pipeline.operations.explain",),
}
# The logic of each component, usable without TFX (tfx_bsl, TFDV and TensorFlow are fine).
TFX_FREE = (
    "tfx_pipeline/components/data_gate/policy.py",
    "tfx_pipeline/components/data_gate/gate.py",
    "tfx_pipeline/components/data_gate/structure.py",
    "tfx_pipeline/components/atomic_pusher/push.py",
    "tfx_pipeline/components/atomic_pusher/model_card.py",
    "tfx_pipeline/components/arrow_csv_example_gen/csv_examples.py",
    "tfx_pipeline/components/arrow_csv_example_gen/csv_errors.py",
    "tfx_pipeline/components/arrow_csv_example_gen/shuffle.py",
    "tfx_pipeline/components/gated_evaluator/rules.py",
    "tfx_pipeline/components/gated_evaluator/judge.py",
    "tfx_pipeline/components/gated_evaluator/results.py",
    "tfx_pipeline/components/infra_validator/servers.py",
    "tfx_pipeline/components/infra_validator/model_server.py",
    "tfx_pipeline/components/infra_validator/requests.py",
    "tfx_pipeline/components/infra_validator/validation.py",
)
# Modules a command imports before it has checked its input: no TensorFlow, TFX or Beam.
LIGHT = (
    "tfx_pipeline.problems",
    "tfx_pipeline.layout",
    "tfx_pipeline.metadata",
    "tfx_pipeline.inputs",
    "tfx_pipeline.config",
    "tfx_pipeline.notifications.notifier",
    "tfx_pipeline.runners.settings",
    "tfx_pipeline.runners.local",
    "tfx_pipeline.runners.up_to_date",
    "tfx_pipeline.runners.vertex",
    "tfx_pipeline.runners.airflow",
    "tfx_pipeline.operations.watch",
    "tfx_pipeline.operations.history",
    "tfx_pipeline.operations.monitor",
    "tfx_pipeline.history",
    "tfx_pipeline.monitor",
    "tfx_pipeline.operations.report",
    "tfx_pipeline.operations.runs",
    "tfx_pipeline.reporting.run_selection",
    "tfx_pipeline.reporting.explain",
    "tfx_pipeline.operations.explain",
    "tfx_pipeline.explain",
    "local_runner",
    "vertex_runner",
)


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: pathlib.Path) -> set[str]:
    """Every module a file imports, at any depth of the file (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
            found.add(node.module)
    return found


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def python_files(folder: str) -> list[pathlib.Path]:
    return sorted((REPO_ROOT / folder).rglob("*.py"))


def package_imports(path: pathlib.Path) -> set[str]:
    """The tfx_pipeline modules `path` imports (a `from tfx_pipeline import x` names x)."""
    return {
        name
        for name in imported_modules(path)
        if name.startswith(PACKAGE + ".") and name.count(".") >= 1
    }


@pytest.mark.parametrize("path", python_files(PACKAGE), ids=lambda p: module_name(p))
def test_each_module_imports_only_the_layers_below_it(path):
    name = module_name(path)
    if name == PACKAGE:
        assert not package_imports(path)
        return
    if within(name, ("tfx_pipeline.components",)):
        own = ".".join(name.split(".")[:3])  # tfx_pipeline.components.<component>
        allowed = (*FOUNDATION, own)
    else:
        layer = next(prefix for prefix in ALLOWED if within(name, (prefix,)))
        allowed = (*ALLOWED[layer], layer) if layer.count(".") else ALLOWED[layer]
    # `from tfx_pipeline import config` reads as tfx_pipeline.config; a bare package is fine.
    wrong = sorted(
        imported
        for imported in package_imports(path)
        if not within(imported, allowed) and imported not in (PACKAGE + ".__init__",)
    )
    assert not wrong, f"{name} may import only {allowed}, imports {wrong}"


@pytest.mark.parametrize("folder", ["serving", "models"])
def test_serving_and_models_never_import_the_pipeline(folder):
    for path in python_files(folder):
        imports = imported_modules(path)
        assert not any(within(i, (PACKAGE,)) for i in imports), path
        if folder == "models":
            assert not any(within(i, ("serving",)) for i in imports), path


def test_the_pipeline_never_imports_serving():
    for path in python_files(PACKAGE):
        assert not any(within(i, ("serving",)) for i in imported_modules(path)), path


@pytest.mark.parametrize("relative", TFX_FREE)
def test_component_logic_is_tfx_free(relative):
    imports = imported_modules(REPO_ROOT / relative)
    assert not any(within(i, ("tfx",)) for i in imports), sorted(imports)


def test_package_folders_are_importable_and_shipped():
    """Every folder of Python files is a package, and the wheel's package list finds it."""
    from setuptools import find_packages

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    found = set(find_packages(str(REPO_ROOT), **config["tool"]["setuptools"]["packages"]["find"]))
    for top in ("models", "serving", PACKAGE):
        for folder in {p.parent for p in python_files(top)}:
            assert (folder / "__init__.py").is_file(), f"{folder} has no __init__.py"
            assert module_name(folder / "__init__.py") in found, folder


@pytest.mark.parametrize("module", LIGHT)
def test_light_modules_load_no_tensorflow_tfx_or_beam(module):
    probe = (
        f"import {module}, sys; "
        "print(sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
