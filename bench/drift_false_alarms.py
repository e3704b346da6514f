"""False alarms and detection of the drift checks: the monitor's and the data gate's, on real taxi rows.

The bundled taxi spans (15,002 rows, data/taxi/) are shuffled (seeded) and cut in two halves: training rows, whose
TFDV statistics are the reference (the monitor's training statistics, the gate's previous span),
and held-out rows. The CSV is ordered by pickup area, so contiguous rows are not in-distribution:
every window is a random sample of held-out rows (with replacement when it is larger than
the held-out half). Per window size, `--null-windows` in-distribution windows and `--windows` per shifted scenario
are judged by:

- monitor, vs training: the window's raw values against the training statistics, with its third
  of the monitor's false-alarm budget;
- monitor, vs previous window: against another window of the same size, likewise;
- data gate: the window's values against the training statistics, as the gate reads a new
  span's examples against the previous span's statistics, with the schema's drift comparators.

Scenarios: in-distribution (every alarm is false), fares times 3, the Credit Card share doubled
(27% -> 54%), a new company in 10% of rows, every coordinate moved 5 km north.

    .venv/bin/python bench/drift_false_alarms.py [--windows 100] [--null-windows 500]
                                                 [--sizes 100 200 1000 10000]

Prints a table (alarm rate per check, size and scenario; false alarms with their 95% upper
bound) and writes bench/results/drift.json. About 10 minutes on 2 cores.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

RESULTS = REPO_ROOT / "bench" / "results" / "drift.json"
SEED = 17
NEW_COMPANY = "New Cab Co (unseen)"
KM_PER_DEGREE_LATITUDE = 111.2
SCENARIOS = (
    "in-distribution",
    "fare x3",
    "Credit Card share x2",
    "new company 10%",
    "coords +5 km",
)
CHECKS = ("monitor vs training", "monitor vs previous window", "data gate")


def shifted(frame, scenario: str, rng):  # noqa: ANN001, ANN201 - pandas
    frame = frame.copy()
    if scenario == "fare x3":
        frame["fare"] = frame["fare"] * 3
    elif scenario == "Credit Card share x2":
        share = float((frame["payment_type"] == "Credit Card").mean())
        flip = (frame["payment_type"] != "Credit Card") & (
            rng.random(len(frame)) < share / max(1e-9, 1 - share)
        )
        frame.loc[flip, "payment_type"] = "Credit Card"
    elif scenario == "new company 10%":
        frame.loc[rng.random(len(frame)) < 0.1, "company"] = NEW_COMPANY
    elif scenario == "coords +5 km":
        for column in ("pickup_latitude", "dropoff_latitude"):
            frame[column] = frame[column] + 5 / KM_PER_DEGREE_LATITUDE
    return frame


def window_values(frame, names) -> dict[str, list]:  # noqa: ANN001
    return {
        name: [None if value != value else value for value in frame[name].tolist()]
        for name in names
    }


def upper_bound(alarms: int, windows: int) -> float:
    """One-sided 95% upper bound of the alarm rate (Clopper-Pearson)."""
    from scipy import stats

    return 1.0 if alarms == windows else float(stats.beta.ppf(0.95, alarms + 1, windows - alarms))


def gate_values(frame) -> dict:  # noqa: ANN001 - pandas
    """The window's columns as the gate reads a span's examples: float arrays (NaN where
    missing) and object arrays (None where missing)."""
    import numpy as np

    values = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind in "if":
            values[name] = column.to_numpy(dtype=float)
        else:
            values[name] = np.array([None if v != v else v for v in column], dtype=object)
    return values


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--windows", type=int, default=100, help="per size and shifted scenario (default: 100)"
    )
    parser.add_argument(
        "--null-windows",
        type=int,
        default=500,
        help="per size in-distribution, where every alarm is false (default: 500)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 1000, 10000])
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args()
    if min(args.windows, args.null_windows, *args.sizes) < 1:
        parser.error("--windows, --null-windows and --sizes must be positive")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import pandas as pd
    import tensorflow_data_validation as tfdv

    from tfx_pipeline import inputs, layout
    from tfx_pipeline.components.data_gate import gate
    from tfx_pipeline.operations import monitor

    config = monitor.read_config(monitor.DEFAULT_CONFIG)
    schema = inputs.read_schema(layout.CURATED_SCHEMA)
    sources = sorted(layout.span_folders(layout.BUNDLED_DATA_ROOT).values())
    frames = [pd.read_csv(folder / "data.csv") for folder in sources]
    rows = pd.concat(frames).sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    half = len(rows) // 2
    training, held_out = rows.iloc[:half], rows.iloc[half:].reset_index(drop=True)
    options = tfdv.StatsOptions()
    training_statistics = tfdv.generate_statistics_from_dataframe(training, options, n_jobs=1)
    reference = monitor.training_reference(training_statistics)
    reference = {name: reference[name] for name in config.features}
    kinds = {name: dist.kind for name, dist in reference.items()}
    # Each monitor check's share of the budget, as monitor.evaluate gives it.
    monitor_rate = config.false_alarm_rate / len(monitor.CHECKS)
    rng = np.random.default_rng(SEED)

    def sample(size: int):  # noqa: ANN202
        index = rng.choice(len(held_out), size=size, replace=size > len(held_out))
        return held_out.iloc[index].reset_index(drop=True)

    results = []
    started = time.monotonic()
    for size in args.sizes:
        for scenario in SCENARIOS:
            alarms = dict.fromkeys(CHECKS, 0)
            named: dict[str, dict[str, int]] = {check: {} for check in CHECKS}
            windows = args.null_windows if scenario == SCENARIOS[0] else args.windows
            for _ in range(windows):
                window = shifted(sample(size), scenario, rng)
                values = window_values(window, config.features)
                previous = monitor.window_reference(window_values(sample(size), kinds), kinds)
                verdicts = {
                    CHECKS[0]: monitor.feature_comparisons(values, reference, config, monitor_rate),
                    CHECKS[1]: monitor.feature_comparisons(values, previous, config, monitor_rate),
                    CHECKS[2]: gate.drift_comparisons(
                        None, training_statistics, schema, values=gate_values(window)
                    ),
                }
                for check, comparisons in verdicts.items():
                    moved = [c.feature for c in comparisons if c.moved]
                    alarms[check] += bool(moved)
                    for feature in moved:
                        named[check][feature] = named[check].get(feature, 0) + 1
            for check in CHECKS:
                results.append(
                    {
                        "check": check,
                        "size": size,
                        "scenario": scenario,
                        "windows": windows,
                        "alarms": alarms[check],
                        "rate": alarms[check] / windows,
                        "rate_upper_95": upper_bound(alarms[check], windows),
                        "features_named": named[check],
                    }
                )
            print(
                f"  size {size:>6}, {scenario:<21}: "
                + ", ".join(f"{c} {alarms[c]}/{windows}" for c in CHECKS),
                flush=True,
            )
    seconds = time.monotonic() - started
    print()
    print(
        f"Alarm rate per check: in-distribution (false alarms, {args.null_windows} windows, "
        f"with the 95% upper bound) and shifted ({args.windows} windows)"
    )
    header = "| check | rows | " + " | ".join(SCENARIOS) + " |"
    print(header)
    print("|" + "---|" * (2 + len(SCENARIOS)))
    for check in CHECKS:
        for size in args.sizes:
            cells = [
                (
                    f"{r['rate']:.1%} (<= {r['rate_upper_95']:.1%})"
                    if scenario == SCENARIOS[0]
                    else f"{r['rate']:.0%}"
                )
                for scenario in SCENARIOS
                for r in results
                if r["check"] == check and r["size"] == size and r["scenario"] == scenario
            ]
            print(f"| {check} | {size:,} | " + " | ".join(cells) + " |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "date": datetime.date.today().isoformat(),
                "machine": platform.node(),
                "source": [str(f) for f in sources],
                "seed": SEED,
                "false_alarm_rate": config.false_alarm_rate,
                "seconds": round(seconds, 1),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\n{seconds:.0f} s; results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
