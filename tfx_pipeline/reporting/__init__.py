"""What a person sees of a run: console progress, the run summary, the evaluation report.

console.py      the terminal gets progress lines, the log file gets every library's output
run_summary.py  what the latest run did, read back from MLMD and its artifacts
evaluation.py   TFMA's evaluation artifact read back: every metric on every slice, thresholds
"""
