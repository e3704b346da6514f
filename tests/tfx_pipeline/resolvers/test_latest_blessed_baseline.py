"""The baseline resolver never offers the candidate as its own baseline."""

from tfx.types import standard_artifacts

from tfx_pipeline.resolvers.latest_blessed_baseline import LatestBlessedBaselineStrategy


def model(artifact_id):
    artifact = standard_artifacts.Model()
    artifact.id = artifact_id
    return artifact


def blessing(model_id, blessed):
    artifact = standard_artifacts.ModelBlessing()
    artifact.set_int_custom_property("current_model_id", model_id)
    artifact.set_int_custom_property("blessed", 1 if blessed else 0)
    return artifact


def resolve(candidate, models, blessings):
    return LatestBlessedBaselineStrategy().resolve_artifacts(
        None, {"candidate": candidate, "model": models, "model_blessing": blessings}
    )


def test_first_run_has_no_baseline():
    result = resolve([model(1)], [model(1)], [])
    assert result["model"] == [] and result["model_blessing"] == []


def test_unchanged_candidate_is_not_its_own_baseline():
    # A cached Trainer hands the already-blessed model back: no baseline, so the Evaluator caches.
    result = resolve([model(1)], [model(1)], [blessing(1, True)])
    assert result["model"] == []


def test_new_candidate_gets_the_latest_blessed_model():
    models = [model(1), model(2), model(3)]
    blessings = [blessing(1, True), blessing(2, True), blessing(3, False)]
    result = resolve([model(4)], models + [model(4)], blessings)
    assert [m.id for m in result["model"]] == [2]
    assert result["model_blessing"][0].get_int_custom_property("current_model_id") == 2


def test_unblessed_models_are_never_baselines():
    result = resolve([model(3)], [model(1), model(2), model(3)], [blessing(2, False)])
    assert result["model"] == []
