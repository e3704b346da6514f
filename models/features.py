"""The feature contract: raw columns, how each is encoded, the label, and transformed names.

Preprocessing, the model, evaluation, serving and the tests all read these names from here.
"""

from typing import Final

# Raw label source columns. The label is derived: did the rider tip more than 20% of the fare?
TIPS_KEY: Final = "tips"
FARE_KEY: Final = "fare"
TIP_FRACTION_THRESHOLD: Final = 0.2
LABEL_KEY: Final = "big_tipper"

# Continuous values: log1p-compressed and z-scored; a missing value becomes 0 (the mean).
NUMERIC_FEATURES: Final = ("fare", "trip_miles", "trip_seconds")

# Coordinates: quantile buckets, with one extra bucket for "missing".
BUCKETIZED_FEATURES: Final = (
    "pickup_latitude",
    "pickup_longitude",
    "dropoff_latitude",
    "dropoff_longitude",
)
BUCKET_COUNT: Final = 10

# Small-integer categories used as their own index. The value n is the number of valid values,
# 0 to n-1; index n stands for "missing or out of range", so the model sees n + 1 buckets.
CATEGORICAL_INT_FEATURES: Final = {
    "trip_start_hour": 24,
    "trip_start_day": 8,
    "trip_start_month": 13,
    "pickup_community_area": 78,
    "dropoff_community_area": 78,
}

# Strings mapped through a vocabulary computed by Transform (value: top-k size).
VOCABULARY_FEATURES: Final = {
    "payment_type": 10,
    "company": 100,
}
OOV_BUCKETS: Final = 1
MISSING_STRING: Final = "__missing__"

# Raw dtypes of every model input, as written in data/schema/schema.pbtxt.
RAW_FEATURE_DTYPES: Final = {
    "fare": "float",
    "trip_miles": "float",
    "trip_seconds": "int",
    "pickup_latitude": "float",
    "pickup_longitude": "float",
    "dropoff_latitude": "float",
    "dropoff_longitude": "float",
    "trip_start_hour": "int",
    "trip_start_day": "int",
    "trip_start_month": "int",
    "pickup_community_area": "int",
    "dropoff_community_area": "int",
    "payment_type": "string",
    "company": "string",
}

# How a JSON client of the raw-feature signature says "this value is missing".
# Floats use NaN, strings the empty string, integers a negative number (no valid value is < 0).
MISSING_VALUE_DOC: Final = "NaN for floats, '' for strings, -1 for integers"
MISSING_INT: Final = -1


def raw_json_instance(csv_row: dict[str, str]) -> dict[str, float | int | str]:
    """A CSV row (column -> cell text) as one `serving_raw` JSON instance, empty cells as missing."""
    instance: dict[str, float | int | str] = {}
    for key, kind in RAW_FEATURE_DTYPES.items():
        text = csv_row.get(key, "")
        if kind == "string":
            instance[key] = text
        elif kind == "int":
            instance[key] = int(float(text)) if text else MISSING_INT
        else:
            instance[key] = float(text) if text else float("nan")
    return instance


# Signature names in the exported SavedModel.
SERVING_EXAMPLES_SIGNATURE: Final = "serving_default"
SERVING_RAW_SIGNATURE: Final = "serving_raw"
TRANSFORM_SIGNATURE: Final = "transform_features"
PROBABILITY_OUTPUT: Final = "probabilities"
EXAMPLES_INPUT: Final = "examples"


def transformed_name(key: str) -> str:
    """Name of the transformed feature made from raw column `key`."""
    return f"{key}_xf"


def vocabulary_name(key: str) -> str:
    """File name Transform gives the vocabulary of raw column `key`."""
    return f"{key}_vocab"


def model_input_names() -> tuple[str, ...]:
    """Transformed feature names the Keras model takes, in a stable order."""
    raw_keys = (
        *NUMERIC_FEATURES,
        *BUCKETIZED_FEATURES,
        *CATEGORICAL_INT_FEATURES,
        *VOCABULARY_FEATURES,
    )
    return tuple(transformed_name(key) for key in raw_keys)
