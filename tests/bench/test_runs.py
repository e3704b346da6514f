"""Bench helpers: process-tree measurement and per-component memory attribution."""

import sys

from runs import component_peaks, measure


def test_measure_sums_the_tree_and_reports_exit_status_and_load():
    # A parent holding ~60 MB starts a child holding ~120 MB; the peak counts both.
    child = "import time; b = bytearray(120_000_000); time.sleep(1.5)"
    parent = (
        "import subprocess, sys, time; a = bytearray(60_000_000); "
        f"subprocess.run([sys.executable, '-c', {child!r}]); print('done'); sys.exit(3)"
    )
    result = measure([sys.executable, "-c", parent], poll_seconds=0.05)
    assert result["exit_status"] == 3
    assert "done" in result["console"]
    assert result["peak_rss_gb"] >= 0.18
    assert result["wall_s"] >= 1.5
    assert result["load_1m_before"] >= 0 and result["load_1m_after"] >= 0
    assert result["rss_timeline"] and max(gb for _, gb in result["rss_timeline"]) >= 0.18


def test_component_peaks_take_the_samples_inside_each_component_window():
    timeline = [(100, 1.0), (101, 2.5), (102, 1.2), (103, 3.0), (104, 0.9)]
    windows = {"ExampleGen": (100.4, 101.9), "Evaluator": (102.0, 103.2), "Pusher": (200.0, 201.0)}
    assert component_peaks(windows, timeline) == {"ExampleGen": 2.5, "Evaluator": 3.0}
