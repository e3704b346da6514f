"""Why a component ran or came from cache, on MLMD stores shaped as TFX's local runner records them."""

import json
import pathlib
import time

import pytest
from ml_metadata.proto import metadata_store_pb2

from tfx_pipeline import metadata
from tfx_pipeline.layout import OutputLayout
from tfx_pipeline.operations import explain as explain_command
from tfx_pipeline.problems import ConfigProblems
from tfx_pipeline.reporting import explain as explain_lib

Execution = metadata_store_pb2.Execution
Artifact = metadata_store_pb2.Artifact
Event = metadata_store_pb2.Event

PIPELINE = "taxi"
# ExampleGen's input_fingerprint: long, and what differs comes last.
FINGERPRINT = (
    "split:single_split,num_files:1,total_bytes:308280,xor_checksum:{checksum},"
    "sum_checksum:{checksum}"
)
CUSTOM_CONFIG = {"batch_size": 64, "module_fingerprint": "c657afc5bc76399c", "seed": 42}


class Recorder:
    """Writes runs into an MLMD store the way TFX 1.16's launcher does.

    Contexts pipeline, pipeline_run, node (`taxi.<node>`) and execution_cache (the cache key);
    exec properties as the execution's custom properties; INPUT and OUTPUT events keyed like the
    component's channels. A cached execution outputs the artifacts it reused.
    """

    def __init__(self, output_dir: pathlib.Path):
        output_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir = output_dir
        self.store = metadata.open_store(
            str(OutputLayout(output_dir).metadata_path), read_only=False
        )
        self.context_types = {
            name: self.store.put_context_type(metadata_store_pb2.ContextType(name=name))
            for name in ("pipeline", "pipeline_run", "node", metadata.CACHE_CONTEXT_TYPE)
        }
        self.pipeline = self._context("pipeline", PIPELINE)
        self.run = None

    def _context(self, type_name: str, name: str) -> int:
        found = self.store.get_context_by_type_and_name(type_name, name)
        if found is not None:
            return found.id
        context = metadata_store_pb2.Context(type_id=self.context_types[type_name], name=name)
        return self.store.put_contexts([context])[0]

    def start_run(self, name: str) -> None:
        self.run = self._context("pipeline_run", name)

    def artifact(self, type_name: str, span: int | None = None) -> Artifact:
        """A LIVE artifact whose uri exists, as a finished execution leaves it."""
        type_id = self.store.put_artifact_type(metadata_store_pb2.ArtifactType(name=type_name))
        artifact = Artifact(type_id=type_id, state=Artifact.LIVE)
        if span is not None:
            artifact.custom_properties["span"].int_value = span
        [artifact.id] = self.store.put_artifacts([artifact])
        artifact.uri = str(self.output_dir / "pipeline_root" / type_name / str(artifact.id))
        pathlib.Path(artifact.uri).mkdir(parents=True)
        self.store.put_artifacts([artifact])
        return self.store.get_artifacts_by_id([artifact.id])[0]

    def execute(
        self,
        node: str,
        state: int = Execution.COMPLETE,
        inputs: dict[str, list[Artifact]] | None = None,
        outputs: dict[str, list[Artifact]] | None = None,
        properties: dict[str, object] | None = None,
        cache_key: str | None = None,
        type_name: str = "",
    ) -> int:
        """One execution of `node` in the current run; its id. `cache_key` None: none (a resolver)."""
        execution_type = self.store.put_execution_type(
            metadata_store_pb2.ExecutionType(name=type_name or f"tfx.components.{node}")
        )
        execution = Execution(type_id=execution_type, last_known_state=state)
        for name, value in (properties or {}).items():
            if isinstance(value, int):
                execution.custom_properties[name].int_value = value
            else:
                execution.custom_properties[name].string_value = value
        events = []
        for event_type, by_key in ((Event.INPUT, inputs or {}), (Event.OUTPUT, outputs or {})):
            for key, artifacts in by_key.items():
                for index, artifact in enumerate(artifacts):
                    event = Event(type=event_type)
                    event.path.steps.add().key = key
                    event.path.steps.add().index = index
                    events.append((artifact, event))
        contexts = [self.pipeline, self.run, self._context("node", f"{PIPELINE}.{node}")]
        if cache_key is not None:
            contexts.append(self._context(metadata.CACHE_CONTEXT_TYPE, cache_key))
        execution_id, _, _ = self.store.put_execution(
            execution,
            events,
            [self.store.get_contexts_by_id([c])[0] for c in contexts],
            reuse_context_if_already_exist=True,
        )
        return execution_id

    def explain(self, component: str, run: str | None = None) -> explain_lib.Explanation:
        runs = metadata.run_contexts(self.store, PIPELINE)
        chosen = next(r for r in runs if r.name == run) if run else runs[-1]
        return explain_lib.explain(self.store, PIPELINE, chosen, component)


def trainer_properties(num_steps: int = 200, **custom_config: object) -> dict[str, object]:
    return {
        "custom_config": json.dumps({**CUSTOM_CONFIG, **custom_config}, sort_keys=True),
        "train_args": json.dumps({"num_steps": num_steps}, indent=2),
        "run_fn": "models.model.run_fn",
    }


def lines_of(explanation: explain_lib.Explanation) -> str:
    return "\n".join(explain_lib.format_explanation(explanation))


@pytest.fixture
def recorder(tmp_path):
    return Recorder(tmp_path / "outputs")


@pytest.fixture
def examples_and_trainer(recorder):
    """Run 1: CsvExampleGen writes span 1 examples, the Trainer trains a model on them."""
    recorder.start_run("run-1")
    examples = recorder.artifact("Examples", span=1)
    recorder.execute(
        "CsvExampleGen",
        outputs={"examples": [examples]},
        properties={"span": 1, "input_config": '{"splits": [{"pattern": "span-1/*"}]}'},
        cache_key="gen-1",
    )
    model = recorder.artifact("Model")
    trainer = recorder.execute(
        "Trainer",
        inputs={"examples": [examples]},
        outputs={"model": [model]},
        properties=trainer_properties(),
        cache_key="trainer-1",
    )
    return examples, model, trainer


def test_a_cached_execution_names_the_execution_whose_outputs_it_reused(
    recorder, examples_and_trainer
):
    examples, model, trainer = examples_and_trainer
    recorder.start_run("run-2")
    cached = recorder.execute(
        "Trainer",
        state=Execution.CACHED,
        inputs={"examples": [examples]},
        outputs={"model": [model]},
        properties=trainer_properties(),
        cache_key="trainer-1",
    )
    explanation = recorder.explain("Trainer")
    assert explanation.outcome == explain_lib.CACHED
    assert explanation.execution.id == cached
    assert (explanation.reused_from.id, explanation.reused_from.run) == (trainer, "run-1")
    assert explanation.outputs[0][0] == "model"
    assert [a.id for a in explanation.outputs[0][1]] == [model.id]
    text = lines_of(explanation)
    assert text.startswith(
        f"Trainer came from cache in run run-2 (execution {cached}): same inputs and "
        f"parameters as execution {trainer} (run run-1, "
    )
    assert f"model: artifact {model.id}: Model  {model.uri}" in text


def test_a_new_input_artifact_is_named_with_its_span_and_producer(recorder, examples_and_trainer):
    examples, _, trainer = examples_and_trainer
    recorder.start_run("run-2")
    new_examples = recorder.artifact("Examples", span=2)
    recorder.execute("CsvExampleGen", outputs={"examples": [new_examples]}, cache_key="gen-2")
    ran = recorder.execute(
        "Trainer",
        inputs={"examples": [new_examples]},
        outputs={"model": [recorder.artifact("Model")]},
        properties=trainer_properties(),
        cache_key="trainer-2",
    )
    explanation = recorder.explain("Trainer")
    assert explanation.outcome == explain_lib.RAN
    assert explanation.execution.id == ran
    assert explanation.compared_with.id == trainer
    assert not explanation.property_changes
    (change,) = explanation.input_changes
    assert change.key == "examples"
    assert [a.id for a in change.before] == [examples.id]
    (after,) = change.after
    assert (after.id, after.span, after.producer, after.producer_run) == (
        new_examples.id,
        2,
        "CsvExampleGen",
        "run-2",
    )
    text = lines_of(explanation)
    assert f"input examples: artifact {examples.id} -> artifact {new_examples.id}" in text
    assert (
        f"now artifact {new_examples.id}: Examples, span 2, from CsvExampleGen (this run)" in text
    )
    assert "was artifact" in text and "span 1, from CsvExampleGen (run run-1)" in text


def test_a_changed_module_fingerprint_is_named_as_the_custom_config_sub_key(
    recorder, examples_and_trainer
):
    examples, _, trainer = examples_and_trainer
    recorder.start_run("run-2")
    recorder.execute(
        "Trainer",
        inputs={"examples": [examples]},
        outputs={"model": [recorder.artifact("Model")]},
        properties=trainer_properties(module_fingerprint="313decc3360210c9"),
        cache_key="trainer-2",
    )
    explanation = recorder.explain("Trainer")
    assert not explanation.input_changes
    assert explanation.property_changes == (
        explain_lib.PropertyChange(
            "custom_config.module_fingerprint", "c657afc5bc76399c", "313decc3360210c9"
        ),
    )
    assert (
        "exec property custom_config.module_fingerprint: c657afc5bc76399c -> 313decc3360210c9"
        in lines_of(explanation)
    )


def test_a_changed_json_parameter_is_named_by_its_sub_key_and_compared_with_what_a_cache_hit_reused(
    recorder, examples_and_trainer
):
    """The latest earlier execution came from cache: it is compared through the one it reused."""
    examples, model, trainer = examples_and_trainer
    recorder.start_run("run-2")
    # A cached execution keeps the exec properties from before its driver ran: a cached
    # ExampleGen has no span. The run it reused has them.
    recorder.execute(
        "Trainer",
        state=Execution.CACHED,
        inputs={"examples": [examples]},
        outputs={"model": [model]},
        properties={"run_fn": "models.model.run_fn"},
        cache_key="trainer-1",
    )
    recorder.start_run("run-3")
    recorder.execute(
        "Trainer",
        inputs={"examples": [examples]},
        outputs={"model": [recorder.artifact("Model")]},
        properties=trainer_properties(num_steps=250),
        cache_key="trainer-3",
    )
    explanation = recorder.explain("Trainer")
    assert explanation.compared_with.id == trainer
    assert explanation.compared_via.run == "run-2"
    assert explanation.property_changes == (
        explain_lib.PropertyChange("train_args.num_steps", "200", "250"),
    )
    assert "exec property train_args.num_steps: 200 -> 250" in lines_of(explanation)


def test_property_changes_go_into_lists_and_shorten_long_values():
    long_before = json.dumps({"slicing_specs": [{"feature_keys": ["payment_type"] * 20}]})
    changes = explain_lib.property_changes(
        {
            "input_config": '{"splits": [{"name": "single_split", "pattern": "span-2/*"}]}',
            "eval_config": long_before,
            "span": 2,
            "dropped": "x",
            "input_fingerprint": FINGERPRINT.format(checksum=1796156497),
        },
        {
            "input_config": '{"splits": [{"name": "single_split", "pattern": "span-3/*"}]}',
            "eval_config": json.dumps({"slicing_specs": []}),
            "span": 3,
            "input_fingerprint": FINGERPRINT.format(checksum=1796157777),
        },
    )
    by_name = {change.name: change for change in changes}
    assert set(by_name) == {
        "input_config.splits[0].pattern",
        "eval_config.slicing_specs",
        "span",
        "dropped",
        "input_fingerprint",
    }
    assert (by_name["span"].before, by_name["span"].after) == ("2", "3")
    assert by_name["input_config.splits[0].pattern"].after == "span-3/*"
    assert by_name["dropped"].after == explain_lib.UNSET
    shortened = by_name["eval_config.slicing_specs"].before
    assert len(shortened) == explain_lib.SHOWN_VALUE_CHARS and shortened.endswith("...")
    # Long values that differ late are cut to where they differ, not to the same beginning.
    fingerprint = by_name["input_fingerprint"]
    assert fingerprint.before.startswith("...") and fingerprint.before.endswith("1796156497")
    assert fingerprint.after.endswith("sum_checksum:1796157777")


def test_the_first_execution_of_a_component_says_first_run(recorder, examples_and_trainer):
    explanation = recorder.explain("Trainer")
    assert explanation.outcome == explain_lib.RAN
    assert explanation.compared_with is None
    assert "no earlier execution of Trainer in pipeline 'taxi': first run." in lines_of(explanation)


def test_the_same_cache_key_with_reusable_outputs_means_caching_was_off(
    recorder, examples_and_trainer
):
    examples, _, trainer = examples_and_trainer
    recorder.start_run("run-2")
    recorder.execute(
        "Trainer",
        inputs={"examples": [examples]},
        outputs={"model": [recorder.artifact("Model")]},
        properties=trainer_properties(),
        cache_key="trainer-1",
    )
    explanation = recorder.explain("Trainer")
    assert explanation.same_key_as.id == trainer
    assert not explanation.same_key_unusable and not explanation.differences
    assert "caching was off for this run" in lines_of(explanation)


def test_nothing_recorded_differs_says_so_and_names_what_mlmd_does_not_record(
    recorder, examples_and_trainer
):
    examples, _, _ = examples_and_trainer
    recorder.start_run("run-2")
    recorder.execute(
        "Trainer",
        inputs={"examples": [examples]},
        outputs={"model": [recorder.artifact("Model")]},
        properties=trainer_properties(),
        cache_key="trainer-2",  # another key, although inputs and properties are the same
    )
    text = lines_of(recorder.explain("Trainer"))
    assert "nothing MLMD records differs" in text
    assert "the executor spec" in text


def test_an_input_updated_since_the_earlier_execution_is_named(recorder, examples_and_trainer):
    examples, _, _ = examples_and_trainer
    time.sleep(0.01)  # MLMD's times are in milliseconds
    examples.custom_properties["note"].string_value = "relabelled"
    recorder.store.put_artifacts([examples])
    recorder.start_run("run-2")
    recorder.execute(
        "Trainer",
        inputs={"examples": [examples]},
        outputs={"model": [recorder.artifact("Model")]},
        properties=trainer_properties(),
        cache_key="trainer-2",
    )
    explanation = recorder.explain("Trainer")
    assert [a.id for a in explanation.updated_inputs] == [examples.id]
    assert "record was updated after the earlier execution read it" in lines_of(explanation)


def test_after_only_failed_executions_there_was_nothing_to_reuse(recorder):
    recorder.start_run("run-1")
    failed = recorder.execute("Transform", state=Execution.FAILED, cache_key="transform-1")
    recorder.start_run("run-2")
    recorder.execute("Transform", cache_key="transform-1")
    explanation = recorder.explain("Transform")
    assert [e.id for e in explanation.earlier_failures] == [failed]
    # A failed execution under the same key is no reusable twin: TFX reuses successes only.
    assert explanation.same_key_as is None
    assert "none of the 1 earlier executions of Transform finished" in lines_of(explanation)


def test_a_failed_execution_gives_the_first_line_of_its_recorded_error(
    recorder, examples_and_trainer
):
    examples, _, _ = examples_and_trainer
    recorder.start_run("run-2")
    result = {"code": 13, "resultMessage": "ValueError: no label column\nTraceback (most recent)"}
    recorder.execute(
        "Trainer",
        state=Execution.FAILED,
        inputs={"examples": [examples]},
        properties={
            **trainer_properties(num_steps=300),
            metadata.EXECUTION_RESULT_PROPERTY: json.dumps(result),
        },
        cache_key="trainer-2",
    )
    explanation = recorder.explain("Trainer")
    assert explanation.outcome == explain_lib.FAILED
    assert explanation.error == "ValueError: no label column"
    # TFX's own result property is not an exec property that changed.
    assert [c.name for c in explanation.property_changes] == ["train_args.num_steps"]
    text = lines_of(explanation)
    assert text.startswith("Trainer failed in run run-2 (execution ")
    assert "): ValueError: no label column" in text


def test_a_failed_execution_without_a_recorded_error_points_at_the_logs(recorder):
    recorder.start_run("run-1")
    recorder.execute("Transform", state=Execution.FAILED, cache_key="transform-1")
    lines = explain_lib.format_explanation(
        recorder.explain("Transform"), pathlib.Path("/outputs/logs")
    )
    assert "MLMD holds no error message" in lines[0]
    assert "the traceback is in the run's log in /outputs/logs" in lines[0]


def test_a_component_after_a_failure_was_skipped(recorder, examples_and_trainer):
    recorder.start_run("run-2")
    failed = recorder.execute("Transform", state=Execution.FAILED, cache_key="transform-1")
    explanation = recorder.explain("Trainer")
    assert explanation.outcome == explain_lib.NOT_RUN
    assert explanation.stopped_by[0] == "Transform"
    assert explanation.last_run.run == "run-1"
    assert lines_of(explanation).startswith(
        f"Trainer did not run in run run-2 (skipped: Transform failed in execution {failed}, "
        "and the run stopped there)."
    )


def test_a_resolver_has_no_cache_key(recorder):
    recorder.start_run("run-1")
    recorder.execute(
        "latest_blessed_model_resolver", type_name="tfx.dsl.components.common.resolver.Resolver"
    )
    explanation = recorder.explain("latest_blessed_model_resolver")
    assert explanation.outcome == explain_lib.UNCACHEABLE
    assert "TFX runs resolver and importer nodes in every run" in lines_of(explanation)


def test_component_ids_match_whatever_their_case(recorder, examples_and_trainer):
    assert recorder.explain("trainer").component == "Trainer"


def test_an_unknown_component_is_refused_naming_the_run_s_components(
    recorder, examples_and_trainer, capsys
):
    with pytest.raises(ConfigProblems, match="its components are: CsvExampleGen, Trainer"):
        recorder.explain("Pusher")
    status = explain_command.main(["--output-dir", str(recorder.output_dir), "Pusher"])
    assert status == 2
    assert "error: no component 'Pusher' in run run-1" in capsys.readouterr().err


def test_the_command_explains_a_run_given_by_id(recorder, examples_and_trainer, capsys):
    _, _, trainer = examples_and_trainer
    recorder.start_run("run-2")
    recorder.execute("Trainer", state=Execution.FAILED, cache_key="trainer-2")
    argv = ["--output-dir", str(recorder.output_dir), "--run", "run-1", "Trainer"]
    assert explain_command.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Trainer ran in run run-1 (execution {trainer}, started ")
    assert "first run" in out


def test_an_unknown_run_is_refused(recorder, examples_and_trainer, capsys):
    argv = ["--output-dir", str(recorder.output_dir), "--run", "run-9", "Trainer"]
    assert explain_command.main(argv) == 2
    assert "error: no run 'run-9' of pipeline 'taxi'" in capsys.readouterr().err


def test_an_output_dir_without_metadata_is_refused(tmp_path, capsys):
    argv = ["--output-dir", str(tmp_path), "Trainer"]
    assert explain_command.main(argv) == 2
    assert "error: no pipeline metadata at" in capsys.readouterr().err
