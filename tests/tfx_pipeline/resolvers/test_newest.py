"""The newest-or-none resolver: the newest artifact of each channel, and none (not a failure) when empty."""

from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.types import standard_artifacts

from tfx_pipeline.resolvers.newest import NewestOrNoneStrategy


def hyperparameters(artifact_id):
    artifact = standard_artifacts.HyperParameters()
    artifact.id = artifact_id
    return artifact


def test_the_newest_artifact_is_the_one_with_the_highest_id():
    found = NewestOrNoneStrategy().resolve_artifacts(
        None, {"hyperparameters": [hyperparameters(3), hyperparameters(7), hyperparameters(5)]}
    )
    assert [a.id for a in found["hyperparameters"]] == [7]


def test_an_empty_channel_resolves_to_none_where_tfxs_strategy_fails_the_node():
    # TFX's LatestArtifactStrategy returns None, which the orchestrator raises as an input
    # resolution error and records as a FAILED execution.
    assert LatestArtifactStrategy().resolve_artifacts(None, {"hyperparameters": []}) is None
    assert NewestOrNoneStrategy().resolve_artifacts(None, {"hyperparameters": []}) == {
        "hyperparameters": []
    }
