"""The inline SVG charts, read back as XML: sizes, marks, axes, escaping and awkward input."""

import re
import threading
import xml.etree.ElementTree as ElementTree

import pytest

from tfx_pipeline.reporting.html import charts
from tfx_pipeline.reporting.html.charts import GraphNode

SVG = "{http://www.w3.org/2000/svg}"
NAN, INF = float("nan"), float("inf")

# The real pipeline's nodes (with the Tuner) and its main data edges.
PIPELINE_NODES = [
    "CsvExampleGen",
    "ImportSchemaGen",
    "StatisticsGen",
    "previous_span_statistics_resolver",
    "ExampleValidator",
    "DataGate",
    "Transform",
    "Tuner",
    "Trainer",
    "latest_blessed_model_resolver",
    "Evaluator",
    "InfraValidator",
    "Pusher",
]
PIPELINE_EDGES = [
    ("CsvExampleGen", "StatisticsGen"),
    ("StatisticsGen", "ExampleValidator"),
    ("ImportSchemaGen", "ExampleValidator"),
    ("ExampleValidator", "DataGate"),
    ("StatisticsGen", "DataGate"),
    ("previous_span_statistics_resolver", "DataGate"),
    ("DataGate", "Transform"),
    ("CsvExampleGen", "Transform"),
    ("ImportSchemaGen", "Transform"),
    ("Transform", "Tuner"),
    ("Transform", "Trainer"),
    ("Tuner", "Trainer"),
    ("CsvExampleGen", "Trainer"),
    ("Trainer", "Evaluator"),
    ("latest_blessed_model_resolver", "Evaluator"),
    ("CsvExampleGen", "Evaluator"),
    ("Trainer", "InfraValidator"),
    ("Evaluator", "Pusher"),
    ("InfraValidator", "Pusher"),
    ("Trainer", "Pusher"),
]


def pipeline_nodes(state: str = "ran") -> list[GraphNode]:
    return [GraphNode(node, node, state, f"{i + 0.5} s") for i, node in enumerate(PIPELINE_NODES)]


# One call of every chart with ordinary input: the properties every chart shares.
EVERY_CHART = {
    "category_bars": lambda: charts.category_bars(
        ["Cash", "Credit Card"], [("this span", [0.4, 0.6]), ("previous span", [0.5, 0.5])], "pay"
    ),
    "histogram": lambda: charts.histogram(
        [("this span", [(0, 1, 0.2), (1, 2, 0.8)]), ("previous span", [(0, 2, 1.0)])], "miles"
    ),
    "line_chart": lambda: charts.line_chart(
        [("loss", [(1, 0.9), (2, 0.5)]), ("val_loss", [(1, 1.0), (2, 0.7)])],
        "Loss",
        "epoch",
        "loss",
    ),
    "roc_curve": lambda: charts.roc_curve([(0, 0), (0.1, 0.6), (1, 1)], auc=0.85),
    "calibration_plot": lambda: charts.calibration_plot([(0.1, 0.12, 10), (0.8, 0.7, 5)]),
    "pipeline_graph": lambda: charts.pipeline_graph(pipeline_nodes(), PIPELINE_EDGES),
}


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def marks(root: ElementTree.Element, name: str, css_class: str | None = None) -> list:
    found = root.iter(f"{SVG}{name}")
    return [element for element in found if css_class is None or element.get("class") == css_class]


def texts(root: ElementTree.Element, css_class: str | None = None) -> list[str]:
    return ["".join(element.itertext()) for element in marks(root, "text", css_class)]


def title_of(element: ElementTree.Element) -> str:
    return element.find(f"{SVG}title").text


@pytest.mark.parametrize("chart", EVERY_CHART.values(), ids=EVERY_CHART.keys())
def test_every_chart_is_one_self_contained_svg_within_the_page(chart):
    markup = chart()
    root = parse(markup)
    assert root.tag == f"{SVG}svg"
    width, height = int(root.get("width")), int(root.get("height"))
    assert 0 < width <= 1200 and height > 0
    assert root.get("viewBox") == f"0 0 {width} {height}"
    assert root.get("role") == "img" and root.get("aria-label")
    # Nothing to fetch and nothing to run: the page's policy would block it anyway.
    for forbidden in ("<script", "href", "src=", "url(", "<image", "<foreignObject"):
        assert forbidden not in markup
    assert chart() == markup  # the same input, the same bytes


@pytest.mark.parametrize(
    "chart",
    [
        lambda: charts.category_bars([], [], "empty"),
        lambda: charts.category_bars(["a"], [("s", [NAN])], "empty"),
        lambda: charts.histogram([], "empty"),
        lambda: charts.histogram([("s", [(0, 1, NAN)])], "empty"),
        lambda: charts.line_chart([("s", [])], "empty", "x", "y"),
        lambda: charts.roc_curve([(NAN, INF)], title="empty"),
        lambda: charts.calibration_plot([], title="empty"),
        lambda: charts.pipeline_graph([], [("a", "b")], title="empty"),
    ],
)
def test_nothing_to_draw_says_no_data(chart):
    root = parse(chart())
    assert "no data" in texts(root)
    assert "empty" in texts(root, "chart-title")
    assert not marks(root, "rect") and not marks(root, "path")


def test_bars_are_as_long_as_their_values():
    root = parse(charts.category_bars(["full", "half", "none"], [("s", [1.0, 0.5, 0.0])], "t"))
    full, half, none = (float(bar.get("width")) for bar in marks(root, "rect", "bar"))
    assert half == pytest.approx(full / 2, abs=0.1)
    assert none == 0.0
    assert texts(root, "tick")[0] == "0%" and texts(root, "tick")[-1] == "100%"
    assert "50.0%" in texts(root)  # the value at the bar's end, in value_format


def test_bars_group_the_series_and_a_missing_value_draws_no_bar():
    series = [("this span", [0.2, 0.3]), ("previous span", [NAN, 0.1]), ("training", [0.4])]
    root = parse(charts.category_bars(["a", "b"], series, "t"))
    bars = marks(root, "rect", "bar")
    assert [bar.get("data-series") for bar in bars] == ["this span", "training", "this span",
                                                        "previous span"]  # fmt: skip
    assert len({bar.get("fill") for bar in bars}) == 3  # a colour per series
    assert title_of(bars[0]) == "a\nthis span: 20.0% (0.2)"
    legend = marks(root, "g", "legend")
    assert len(legend) == 1 and texts(legend[0]) == ["this span", "previous span", "training"]


def test_one_series_needs_no_legend_and_all_zero_values_still_draw():
    root = parse(charts.category_bars(["a", "b"], [("s", [0.0, 0.0])], "zeros", "{:.0f}"))
    assert not marks(root, "g", "legend")
    assert [float(bar.get("width")) for bar in marks(root, "rect", "bar")] == [0.0, 0.0]
    assert texts(root, "tick") == ["0.0", "0.5", "1.0"]  # an axis to read zero against


def test_labels_are_escaped_and_a_long_one_is_cut_with_its_full_text_in_a_title():
    long_label = "a_category_value_far_too_long_to_fit_beside_its_bar"
    markup = charts.category_bars(["<script>&", long_label], [("s", [0.5, 0.5])], "<b>")
    assert "<script>" not in markup and "&lt;script&gt;&amp;" in markup
    root = parse(markup)
    assert "<script>&" in texts(root) and "<b>" in texts(root, "chart-title")
    cut = [text for text in marks(root, "text") if text.find(f"{SVG}title") is not None]
    assert len(cut) == 1 and title_of(cut[0]) == long_label
    assert cut[0].text.endswith("…") and len(cut[0].text) < len(long_label)


def test_histogram_series_share_one_x_axis_and_a_constant_feature_still_shows():
    series = [
        ("this span", [(0.0, 1.0, 0.25), (1.0, 2.0, 0.75)]),
        ("previous span", [(10.0, 10.0, 1.0)]),  # zero width: one value
        ("training data", [(0.0, NAN, 0.5), (5.0, 6.0, INF)]),  # nothing finite
    ]
    root = parse(charts.histogram(series, "t", x_label="miles"))
    outlines = marks(root, "path", "series")
    assert [path.get("data-series") for path in outlines] == ["this span", "previous span"]
    assert outlines[0].get("fill") != "none" and outlines[1].get("fill") == "none"
    ticks = [float(text) for text in texts(root.find(f"{SVG}g[@class='x-axis']"), "tick")]
    assert ticks[0] <= 0.0 and ticks[-1] >= 10.0
    buckets = marks(root, "rect", "bucket")
    assert len(buckets) == 3
    assert float(buckets[2].get("width")) >= charts.MIN_BAR_PX
    left, _, _, right, _ = map(float, re.findall(r"[\d.]+", outlines[1].get("d")))
    assert right - left >= charts.MIN_BAR_PX
    assert title_of(buckets[2]) == "previous span\n10 to 10\nshare 1"
    # The share is drawn as given: the 0.75 bucket three times as tall as the 0.25 one.
    assert float(buckets[1].get("height")) == pytest.approx(
        3 * float(buckets[0].get("height")), abs=0.2
    )
    assert "miles" in texts(root, "axis-label")


def test_line_chart_skips_what_is_not_finite_and_keeps_a_single_point():
    series = [("loss", [(1, 0.5), (2, NAN), (3, 0.25), (INF, 0.1)]), ("one", [(2, 0.4)])]
    root = parse(charts.line_chart(series, "t", "epoch", "loss", markers=False))
    points = marks(root, "circle", "point")
    assert [title_of(point) for point in points] == [
        "loss\nepoch 1\nloss 0.5",
        "loss\nepoch 3\nloss 0.25",
        "one\nepoch 2\nloss 0.4",
    ]
    # Without markers the points are only hover targets, but a lone point must show.
    assert [point.get("fill-opacity") for point in points] == ["0", "0", None]
    assert len(marks(root, "path", "series")) == 2
    assert {"epoch", "loss"} <= set(texts(root, "axis-label"))


def test_line_chart_y_range_fixes_the_axis_at_nice_ticks():
    root = parse(charts.line_chart([("auc", [(0, 0.8), (1, 0.9)])], "t", "trial", "AUC", (0.5, 1)))
    y_ticks = texts(root.find(f"{SVG}g[@class='y-axis']"), "tick")
    assert y_ticks == ["0.5", "0.6", "0.7", "0.8", "0.9", "1.0"]
    x_ticks = [float(text) for text in texts(root.find(f"{SVG}g[@class='x-axis']"), "tick")]
    steps = {round(b - a, 9) for a, b in zip(x_ticks, x_ticks[1:], strict=False)}
    assert len(steps) == 1 and steps.pop() in (0.1, 0.2, 0.5, 1.0)


def test_roc_curve_is_square_with_the_chance_line_and_the_auc():
    root = parse(charts.roc_curve([(1, 1), (0, 0), (0.2, 0.7), (NAN, 0.5)], auc=0.8765))
    diagonal = marks(root, "line", "diagonal")[0]
    width = float(diagonal.get("x2")) - float(diagonal.get("x1"))
    assert width == pytest.approx(float(diagonal.get("y1")) - float(diagonal.get("y2")))
    assert diagonal.get("stroke-dasharray")
    assert "model (AUC 0.8765)" in texts(root)
    curve = marks(root, "path", "series")[0].get("d")
    assert curve.startswith("M") and curve.count("L") == 2  # sorted, NaN left out
    assert len(marks(root, "circle", "point")) == 3


def test_calibration_points_have_areas_in_proportion_to_their_weights():
    buckets = [(0.1, 0.1, 100.0), (0.5, 0.45, 25.0), (0.9, 0.95, 0.0), (INF, 0.5, 1.0)]
    root = parse(charts.calibration_plot(buckets))
    radius = {title_of(c).split("\n")[0]: float(c.get("r")) for c in marks(root, "circle", "point")}
    assert set(radius) == {"predicted 0.1000", "predicted 0.5000", "predicted 0.9000"}
    assert radius["predicted 0.1000"] == pytest.approx(2 * radius["predicted 0.5000"], abs=0.1)
    assert 0 < radius["predicted 0.9000"] < radius["predicted 0.5000"] <= 12
    assert marks(root, "line", "diagonal")


def nodes_by_id(root: ElementTree.Element) -> dict[str, ElementTree.Element]:
    return {group.get("data-node"): group for group in marks(root, "g", "node")}


def box(group: ElementTree.Element) -> tuple[float, float, float, float]:
    rect = group.find(f"{SVG}rect")
    return tuple(float(rect.get(name)) for name in ("x", "y", "width", "height"))


def test_the_pipeline_graph_draws_each_node_after_what_it_depends_on():
    root = parse(charts.pipeline_graph(pipeline_nodes(), PIPELINE_EDGES, title="Run 7"))
    nodes = nodes_by_id(root)
    assert list(nodes) == PIPELINE_NODES
    for source, target in PIPELINE_EDGES:
        assert box(nodes[target])[0] > box(nodes[source])[0] + box(nodes[source])[2]
    # Sources share the first layer, stacked in input order.
    sources = [
        box(nodes[n]) for n in ("CsvExampleGen", "ImportSchemaGen", "latest_blessed_model_resolver")
    ]
    assert len({x for x, _, _, _ in sources}) == 1
    assert [y for _, y, _, _ in sources] == sorted(y for _, y, _, _ in sources)
    assert len(marks(root, "g", "edge")) == len(PIPELINE_EDGES)
    assert int(root.get("width")) <= 1200
    # Every box inside the drawing.
    assert all(
        x >= 0 and x + w <= int(root.get("width")) for x, _, w, _ in map(box, nodes.values())
    )
    assert title_of(nodes["DataGate"]) == "DataGate\nran\n5.5 s"


def test_pipeline_nodes_carry_their_state_and_the_legend_lists_the_states_shown():
    nodes = [
        GraphNode("a", "a", "ran"),
        GraphNode("b", "b", "failed", "boom"),
        GraphNode("c", "c", "skipped"),
        GraphNode("d", "d", "no such state"),
    ]
    root = parse(charts.pipeline_graph(nodes, [("a", "b"), ("b", "c"), ("c", "d")]))
    groups = nodes_by_id(root)
    assert {node: group.get("data-state") for node, group in groups.items()} == {
        "a": "ran",
        "b": "failed",
        "c": "skipped",
        "d": "unknown",
    }
    assert groups["c"].find(f"{SVG}rect").get("stroke-dasharray")  # skipped: dashed border
    assert groups["a"].find(f"{SVG}rect").get("fill") != groups["b"].find(f"{SVG}rect").get("fill")
    assert texts(marks(root, "g", "legend")[0]) == ["ran", "failed", "skipped", "unknown"]
    assert "boom" in texts(groups["b"], "detail")


def test_pipeline_edges_to_unknown_nodes_are_ignored_and_labels_are_escaped():
    nodes = [GraphNode("x", "<x>&", "ran"), GraphNode("y", "y", "cached")]
    markup = charts.pipeline_graph(nodes, [("x", "y"), ("x", "gone"), ("gone", "y"), ("x", "y")])
    root = parse(markup)
    edges = marks(root, "g", "edge")
    assert [(e.get("data-source"), e.get("data-target")) for e in edges] == [("x", "y")]
    assert "&lt;x&gt;&amp;" in markup and "<x>&" in texts(nodes_by_id(root)["x"])


def test_a_cycle_does_not_hang_and_falls_back_to_input_order():
    nodes = [GraphNode(name, name, "ran") for name in ("a", "b", "x", "c")]
    # c -> a closes a cycle (and c -> c a loop): only edges forward in input order place nodes.
    edges = [("a", "b"), ("b", "c"), ("x", "c"), ("c", "a"), ("c", "c")]
    result = []
    worker = threading.Thread(
        target=lambda: result.append(charts.pipeline_graph(nodes, edges)), daemon=True
    )
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive() and result
    root = parse(result[0])
    x = {node: box(group)[0] for node, group in nodes_by_id(root).items()}
    assert x["a"] == x["x"] < x["b"] < x["c"]  # c after its deeper predecessor b
    assert len(marks(root, "g", "edge")) == 5
    for edge in marks(root, "g", "edge"):  # the edges back start left of the first column
        assert min(map(float, re.findall(r"-?[\d.]+", edge.find(f"{SVG}path").get("d")))) >= 0


def test_long_node_labels_wrap_inside_their_box():
    label = "previous_span_statistics_resolver_with_an_even_longer_name_than_usual"
    nodes = [GraphNode(f"n{i}", label if i == 5 else f"n{i}", "ran") for i in range(13)]
    root = parse(charts.pipeline_graph(nodes, [(f"n{i}", f"n{i + 1}") for i in range(12)]))
    group = nodes_by_id(root)["n5"]
    lines = [text for text in texts(group) if text]
    assert 1 < len(lines) <= 3 and lines[-1].endswith("…")
    assert lines[0].startswith("previous_")
    assert title_of(group).startswith(label)
    assert int(root.get("width")) <= 1200


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.0, 1.0, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
        (3.0, 3.0, ["2.7", "2.8", "2.9", "3.0", "3.1", "3.2", "3.3"]),  # one x: widened
        (-0.5, 1234.0, ["-500", "0", "500", "1,000", "1,500"]),
        (1e-4, 3e-4, ["0.00010", "0.00015", "0.00020", "0.00025", "0.00030"]),
    ],
)
def test_axis_ticks_fall_on_nice_numbers_written_to_their_precision(low, high, expected):
    root = parse(charts.line_chart([("s", [(low, 1.0), (high, 2.0)])], "t", "x", "y"))
    assert texts(root.find(f"{SVG}g[@class='x-axis']"), "tick") == expected


def test_share_ticks_read_as_percentages():
    root = parse(charts.category_bars(["a", "b"], [("s", [0.05, 0.37])], "t"))
    assert texts(root, "tick") == ["0%", "10%", "20%", "30%", "40%"]
