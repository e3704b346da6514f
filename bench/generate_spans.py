"""Writes larger taxi spans, any row count, by resampling the bundled spans with small jitter.

Rows are drawn with replacement from `data/taxi/span-*/data.csv` with a seeded generator, so the
same arguments always write the same bytes. Continuous columns get a small jitter that stays
inside the curated schema's ranges; categories, hours, days, months and missing cells are kept as
they are, and fare and tips move by the same factor so the label (tip > 20% of fare) is unchanged.
Statistics therefore stay realistic, the schema still holds, and drift between spans stays small.

    .venv/bin/python bench/generate_spans.py --out /tmp/taxi-1m --rows 1000000
    .venv/bin/python bench/generate_spans.py --out /tmp/taxi-rolling --rows 100000 --spans 10
    .venv/bin/python bench/generate_spans.py --out /tmp/taxi-rolling --rows 100000 --first-span 11
"""

import argparse
import pathlib
import sys

import numpy as np
import pandas as pd

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT / "data" / "taxi"
DEFAULT_SCHEMA = REPO_ROOT / "data" / "schema" / "schema.pbtxt"

# Relative jitter (standard deviation of a multiplicative factor around 1) of money, distance and
# duration: small enough that distributions keep their shape, large enough that rows differ.
RELATIVE_JITTER = 0.02
# Absolute jitter of coordinates in degrees (about 50 m), a city-block scale.
COORDINATE_JITTER = 0.0005
# Columns that move by one shared factor per row, so their ratio (the label) is preserved.
MONEY_COLUMNS = ("fare", "tips")
SCALED_COLUMNS = ("trip_miles", "trip_seconds")
COORDINATE_COLUMNS = (
    "pickup_latitude",
    "pickup_longitude",
    "dropoff_latitude",
    "dropoff_longitude",
)
# Decimals written per float column, as in the source data.
FLOAT_DECIMALS = {"fare": 2, "tips": 2, "trip_miles": 2, **dict.fromkeys(COORDINATE_COLUMNS, 6)}
# CSV rows per file: several files per span let Beam read a span in parallel.
DEFAULT_ROWS_PER_FILE = 250_000


def schema_ranges(schema_path: pathlib.Path) -> dict[str, tuple[float, float]]:
    """(min, max) of every float or int column with a domain in the schema."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = text_format.Parse(schema_path.read_text(), schema_pb2.Schema())
    ranges = {}
    for feature in schema.feature:
        if feature.HasField("float_domain"):
            ranges[feature.name] = (feature.float_domain.min, feature.float_domain.max)
        elif feature.HasField("int_domain"):
            ranges[feature.name] = (feature.int_domain.min, feature.int_domain.max)
    return ranges


def read_source(source_root: pathlib.Path) -> pd.DataFrame:
    """Every row of every `span-N/*.csv` under `source_root`, integers kept nullable."""
    files = sorted(source_root.glob("span-*/*.csv"))
    if not files:
        raise ValueError(f"no span-N/*.csv files under {source_root}")
    # Only empty cells are missing: a company or payment type spelled "NA" stays a string.
    frames = [pd.read_csv(path, keep_default_na=False, na_values=[""]) for path in files]
    columns = list(frames[0].columns)
    for path, frame in zip(files[1:], frames[1:], strict=True):
        if list(frame.columns) != columns:
            raise ValueError(f"{path} has columns {list(frame.columns)}, expected {columns}")
    data = pd.concat(frames, ignore_index=True)
    # Integer columns with empty cells load as float; write them back as integers.
    for column in data.columns:
        values = data[column]
        if values.dtype.kind == "f" and column not in FLOAT_DECIMALS:
            present = values.dropna()
            if (present == present.round()).all():
                data[column] = values.astype("Int64")
    return data


def resample(
    source: pd.DataFrame,
    rows: int,
    seed: int,
    ranges: dict[str, tuple[float, float]],
) -> pd.DataFrame:
    """`rows` rows drawn with replacement from `source`, continuous columns jittered in range."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    picked = source.iloc[rng.integers(0, len(source), size=rows)].reset_index(drop=True)

    money_factor = np.clip(rng.normal(1.0, RELATIVE_JITTER, size=rows), 0.9, 1.1)
    for column in MONEY_COLUMNS:
        picked[column] = _clip(picked[column] * money_factor, column, ranges)
    for column in SCALED_COLUMNS:
        factor = np.clip(rng.normal(1.0, RELATIVE_JITTER, size=rows), 0.9, 1.1)
        jittered = _clip(picked[column].astype("float64") * factor, column, ranges)
        picked[column] = (
            jittered.round().astype("Int64") if picked[column].dtype.name == "Int64" else jittered
        )
    for column in COORDINATE_COLUMNS:
        offset = rng.normal(0.0, COORDINATE_JITTER, size=rows)
        picked[column] = _clip(picked[column] + offset, column, ranges)
    for column, decimals in FLOAT_DECIMALS.items():
        picked[column] = picked[column].round(decimals)
    return picked


def _clip(values: pd.Series, column: str, ranges: dict[str, tuple[float, float]]) -> pd.Series:
    low, high = ranges.get(column, (-np.inf, np.inf))
    return values.clip(lower=low, upper=high)  # missing values stay missing


def write_span(
    frame: pd.DataFrame, span_dir: pathlib.Path, rows_per_file: int
) -> list[pathlib.Path]:
    """Writes `frame` as `data-00000.csv`, ... of at most `rows_per_file` rows each."""
    span_dir.mkdir(parents=True, exist_ok=False)
    paths = []
    for number, start in enumerate(range(0, len(frame), rows_per_file)):
        path = span_dir / f"data-{number:05d}.csv"
        frame.iloc[start : start + rows_per_file].to_csv(path, index=False)
        paths.append(path)
    return paths


def generate(
    out: pathlib.Path,
    rows: int,
    spans: int = 1,
    first_span: int = 1,
    seed: int = 0,
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
    source_root: pathlib.Path = DEFAULT_SOURCE,
    schema_path: pathlib.Path = DEFAULT_SCHEMA,
) -> list[pathlib.Path]:
    """Writes spans `first_span` .. `first_span + spans - 1` of `rows` rows each under `out`.

    Each span's rows depend only on (seed, span number), so a span written alone later equals
    the same span written in a batch.

    Returns:
      The span folders written.
    """
    if spans < 1 or first_span < 1 or rows_per_file < 1:
        raise ValueError("spans, first_span and rows_per_file must each be at least 1")
    existing = [out / f"span-{n}" for n in range(first_span, first_span + spans)]
    clashes = [str(path) for path in existing if path.exists()]
    if clashes:
        raise ValueError(f"span folders already exist (pick another --first-span): {clashes}")
    source = read_source(source_root)
    ranges = schema_ranges(schema_path)
    for span_dir in existing:
        span_number = int(span_dir.name.split("-")[1])
        frame = resample(source, rows, seed=seed * 1_000_003 + span_number, ranges=ranges)
        write_span(frame, span_dir, rows_per_file)
    return existing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=pathlib.Path, required=True, help="data root to write into")
    parser.add_argument("--rows", type=int, required=True, help="rows per span")
    parser.add_argument("--spans", type=int, default=1, help="how many spans (default: 1)")
    parser.add_argument(
        "--first-span", type=int, default=1, help="number of the first span written (default: 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument(
        "--rows-per-file",
        type=int,
        default=DEFAULT_ROWS_PER_FILE,
        help="CSV rows per file within a span (default: %(default)s)",
    )
    parser.add_argument(
        "--source", type=pathlib.Path, default=DEFAULT_SOURCE, help="default: %(default)s"
    )
    parser.add_argument(
        "--schema", type=pathlib.Path, default=DEFAULT_SCHEMA, help="default: %(default)s"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rows < 1:
        print(f"error: --rows must be at least 1, got {args.rows}", file=sys.stderr)
        return 2
    try:
        written = generate(
            args.out,
            args.rows,
            spans=args.spans,
            first_span=args.first_span,
            seed=args.seed,
            rows_per_file=args.rows_per_file,
            source_root=args.source,
            schema_path=args.schema,
        )
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for span_dir in written:
        print(f"wrote {span_dir} ({args.rows} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
