"""The developer tooling holds together: GitHub Actions, pre-commit hooks and the Makefile.

Fast and offline, no TensorFlow: workflows and local actions are validated against the schemas
check-jsonschema ships, pre-commit validates its own config, and every make target, script and
file the workflows name must exist in the repository.
"""

import pathlib
import re
import shlex
import subprocess
import sys

import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKFLOW_DIR = REPO_ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml")) + sorted(WORKFLOW_DIR.glob("*.yaml"))
LOCAL_ACTIONS = sorted((REPO_ROOT / ".github" / "actions").glob("*/action.yml"))
# The console scripts of the environment running the tests (.venv/bin under `make test`).
VENV_BIN = pathlib.Path(sys.executable).parent
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
SCRIPT = re.compile(r"[\w.-]+(/[\w.-]+)*\.(py|sh)|\.ci/[\w.-]+")


def run_tool(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / command[0]), *command[1:]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def load_yaml(path: pathlib.Path) -> dict:
    return yaml.safe_load(path.read_text())


def walk(node: object, key: str) -> list[object]:
    """Every value stored under `key` anywhere in a parsed YAML document."""
    found = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                found.append(value)
            found += walk(value, key)
    elif isinstance(node, list):
        for item in node:
            found += walk(item, key)
    return found


def shell_words(script: str) -> list[str]:
    """The words of a `run:` script, with `${{ }}` expressions blanked and operators split off."""
    lexer = shlex.shlex(EXPRESSION.sub("EXPR", script), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def run_scripts() -> dict[str, list[str]]:
    """The words of every `run:` script, keyed by 'file: first line of the script'."""
    scripts = {}
    for path in WORKFLOWS + LOCAL_ACTIONS:
        for script in walk(load_yaml(path), "run"):
            if isinstance(script, str):
                label = f"{path.relative_to(REPO_ROOT)}: {script.strip().splitlines()[0]}"
                scripts[label] = shell_words(script)
    return scripts


def make_targets_called(words: list[str]) -> list[str]:
    """Targets of each `make ...` command: words after make up to an operator, less options,
    variable assignments and shell expansions."""
    targets = []
    for index, word in enumerate(words):
        if word != "make":
            continue
        for argument in words[index + 1 :]:
            if argument in SHELL_OPERATORS:
                break
            if not argument.startswith(("-", "$")) and "=" not in argument:
                targets.append(argument)
    return targets


def makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+)[ \t]*:(?!=)", text, re.MULTILINE))


def test_there_are_workflows_and_they_run_make():
    assert WORKFLOWS, "no GitHub Actions workflow in .github/workflows"
    called = {target for words in run_scripts().values() for target in make_targets_called(words)}
    # Lint and fast tests on each push, the whole suite nightly, the Vertex JSON as an artifact.
    assert {"lint", "test-fast", "test", "vertex-compile", "vertex-submit"} <= called, called


# check-jsonschema's built-in schemas ship inside its wheel: nothing is fetched.
def check_schema(builtin: str, paths: list[pathlib.Path]) -> subprocess.CompletedProcess:
    assert paths, f"nothing to check against {builtin}"
    return run_tool("check-jsonschema", "--builtin-schema", builtin, *map(str, paths))


def test_the_workflows_match_githubs_workflow_schema():
    result = check_schema("vendor.github-workflows", WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_workflow_job_has_a_timeout():
    # GitHub's default is six hours; a hung end-to-end run should fail long before that.
    result = check_schema("custom.github-workflows-require-timeout", WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_local_actions_match_githubs_action_schema():
    result = check_schema("vendor.github-actions", LOCAL_ACTIONS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_malformed_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    # `step` for `steps`, and a job with nowhere to run.
    broken.write_text("on: push\njobs:\n  lint:\n    step:\n      - run: make lint\n")
    result = check_schema("vendor.github-workflows", [broken])
    assert result.returncode != 0
    assert "broken.yml" in result.stdout + result.stderr


def test_every_make_target_the_workflows_run_is_in_the_makefile():
    targets = makefile_targets()
    missing = [
        f"{label}: make {target}"
        for label, words in run_scripts().items()
        for target in make_targets_called(words)
        if target not in targets
    ]
    assert not missing, missing


def test_every_script_and_file_the_workflows_name_exists():
    named = []
    for label, words in run_scripts().items():
        named += [(label, word) for word in words if SCRIPT.fullmatch(word)]
    for path in WORKFLOWS + LOCAL_ACTIONS:
        document = load_yaml(path)
        where = str(path.relative_to(REPO_ROOT))
        named += [(where, use) for use in walk(document, "uses") if use.startswith("./")]
        for build in walk(document, "with"):
            named += [(where, build[key]) for key in ("file", "context") if key in build]
        for key in walk(document, "key"):
            for argument in re.findall(r"hashFiles\(([^)]*)\)", str(key)):
                named += [(where, name.strip(" '\"")) for name in argument.split(",")]
    assert named
    missing = [f"{where}: {name}" for where, name in named if not (REPO_ROOT / name).exists()]
    assert not missing, missing


def test_every_script_the_makefile_runs_exists():
    joined = (REPO_ROOT / "Makefile").read_text().replace("\\\n", " ")
    recipes = [line for line in joined.splitlines() if line.startswith("\t")]
    named = [word for line in recipes for word in shell_words(line) if SCRIPT.fullmatch(word)]
    assert named
    missing = [name for name in named if not (REPO_ROOT / name).is_file()]
    assert not missing, missing


def test_the_pre_commit_config_is_valid():
    result = run_tool("pre-commit", "validate-config", ".pre-commit-config.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_pre_commit_rejects_a_malformed_config(tmp_path):
    broken = tmp_path / "pre-commit-config.yaml"
    # A local hook without the command it runs.
    hook = "      - id: ruff\n        name: ruff\n        language: unsupported\n"
    broken.write_text("repos:\n  - repo: local\n    hooks:\n" + hook)
    result = run_tool("pre-commit", "validate-config", str(broken))
    assert result.returncode != 0
    assert "Missing required key: entry" in result.stdout + result.stderr
