"""Self-contained HTML for people: one file that opens from disk, offline, in any browser.

page.py    the document shell (inline CSS, a policy that forbids every fetch), sections, tables
charts.py  inline SVG charts: bars, histograms, curves, ROC, calibration, the pipeline graph
"""
