"""Rebuilds data/taxi/span-N/data.csv from the Chicago taxi sample that ships inside the tfx package.

The bundled spans are committed; run this only to regenerate them:
    .venv/bin/python data/split_taxi_spans.py
Rows are split by trip start time, so each span is a later slice of time, the way new data arrives.
Lines are copied byte for byte, so values keep the exact text of the source file.
"""

import argparse
import datetime
import pathlib

import tfx

# Span boundaries (UTC, exclusive upper bounds); the last span takes everything after.
SPAN_STARTS = (
    datetime.datetime(2013, 1, 1, tzinfo=datetime.UTC),
    datetime.datetime(2014, 7, 1, tzinfo=datetime.UTC),
)
TIMESTAMP_COLUMN = "trip_start_timestamp"


def source_csv() -> pathlib.Path:
    return pathlib.Path(tfx.__file__).parent / "examples/chicago_taxi_pipeline/data/simple/data.csv"


def split(source: pathlib.Path, out_root: pathlib.Path) -> dict[int, int]:
    """Writes one span per time range and returns the row count of each span."""
    lines = source.read_text().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    ts_index = header.rstrip("\n").split(",").index(TIMESTAMP_COLUMN)
    starts = [int(s.timestamp()) for s in SPAN_STARTS]
    spans: dict[int, list[str]] = {n: [] for n in range(1, len(starts) + 1)}
    for row in rows:
        # The timestamp column precedes every quoted free-text column, so a plain split is exact.
        timestamp = int(row.split(",")[ts_index])
        span = max(n for n, start in enumerate(starts, start=1) if timestamp >= start or n == 1)
        spans[span].append(row)
    for span, span_rows in spans.items():
        span_dir = out_root / f"span-{span}"
        span_dir.mkdir(parents=True, exist_ok=True)
        (span_dir / "data.csv").write_text(header + "".join(span_rows))
    return {span: len(span_rows) for span, span_rows in spans.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).parent / "taxi")
    args = parser.parse_args()
    counts = split(source_csv(), args.out)
    for span, count in counts.items():
        print(f"span-{span}: {count} rows")


if __name__ == "__main__":
    main()
