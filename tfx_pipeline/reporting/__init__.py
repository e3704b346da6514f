"""What a person sees of a run: console progress, the run summary, reports, comparisons, explanations.

console.py           the terminal gets progress lines, the log file gets every library's output
run_summary.py       what a run did, read back from MLMD and its artifacts (the console summary)
evaluation.py        TFMA's evaluation artifact read back: every metric on every slice, thresholds
training.py          the Trainer's training curve and the Tuner's trials, read back from their files
evaluation_plots.py  the candidate's ROC and calibration per slice, from the Evaluator's plots
run_report/          the HTML run report: six sections from MLMD and the artifacts
html/                self-contained HTML: the page shell and inline SVG charts
run_comparison.py    every run on one line each, and two runs side by side (text and HTML)
explain.py           why a component ran or came from cache, from MLMD's cache contexts
run_selection.py     which run a command is about (--run ID or the latest), refused clearly
"""
