"""Inline SVG charts for the reports: category bars, histograms, curves, ROC, calibration, the DAG.

Hand-written SVG, no plotting library and no script: each function returns one `<svg>` element a
page embeds as is. The same input gives the same bytes, every text is escaped, marks carry a
`<title>` with exact values for hover, and awkward input (empty, one point, NaN or inf, all zero)
draws instead of raising: NaN and inf are left out, nothing left says "no data".
"""

import dataclasses
import math
import re
from collections.abc import Callable, Sequence

from tfx_pipeline.reporting.html.page import Html, esc, join, tag

SVG_NAMESPACE = "http://www.w3.org/2000/svg"
# Okabe-Ito, in this order: series stay distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
# Widths that fit the page's 1192 px column as `.grid` of `.card`s (26 px of padding and border
# each, 24 px apart): three small charts or two wide ones a row; the graph takes the column alone.
SMALL_WIDTH, WIDE_WIDTH, GRAPH_WIDTH = 350, 550, 1180
TEXT, MUTED, GRID, AXIS_LINE = "#1f2328", "#57606a", "#e6e8eb", "#8c959f"
# Average glyph width as a share of the font size: text is fitted without a renderer to measure it.
CHAR_WIDTH = 0.6
MIN_BAR_PX = 2.0  # a zero-width bucket (a constant feature) still shows
MAX_HOVER_POINTS = 200  # hover targets on a long curve are sampled; the line keeps every point
TICK = {"size": 10.5, "fill": MUTED, "class_": "tick"}
# Pipeline node states: fill, border, dashed border.
STATE_STYLES = {
    "ran": ("#d5f0dc", "#1a7f37", False),
    "cached": ("#d9e7fb", "#0b57d0", False),
    "failed": ("#f7c9c4", "#c62828", False),
    "skipped": ("#eef0f2", "#8c959f", True),
    "running": ("#fde7b5", "#b26a00", False),
    "unknown": ("#ffffff", "#8c959f", False),
}


@dataclasses.dataclass(frozen=True)
class GraphNode:
    """One pipeline node; `state` is ran, cached, failed, skipped, running or unknown."""

    node_id: str
    label: str
    state: str
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class _Axis:
    """A linear map from data [low, high] to pixels [start, end], with ticks at nice numbers."""

    low: float
    high: float
    start: float
    end: float
    ticks: tuple[float, ...]
    step: float

    def at(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def _px(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _el(name: str, content: object = "", **attributes: object) -> Html:
    """An SVG element; float attributes are written to a tenth of a pixel."""
    written = {key: _px(v) if isinstance(v, float) else v for key, v in attributes.items()}
    return tag(name, content, **written)


def _rect(x: float, y: float, width: float, height: float, content: object = "", **style) -> Html:
    return _el("rect", content, x=x, y=y, width=width, height=height, **style)


def _circle(x: float, y: float, radius: float, content: object = "", **style: object) -> Html:
    return _el("circle", content, cx=x, cy=y, r=radius, **style)


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, **style: object) -> Html:
    return _el("line", x1=x1, y1=y1, x2=x2, y2=y2, stroke=stroke, **style)


def _path(commands: str, hover: str = "", **style: object) -> Html:
    style.setdefault("fill", "none")
    return _el("path", tag("title", hover) if hover else "", d=commands, **style)


def _finite(value: object) -> float | None:
    """`value` as a float, or None for NaN, inf, None and anything that is not a number."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _text(
    x: float,
    y: float,
    content: object,
    width: float | None = None,
    size: float = 11.0,
    anchor: str = "start",
    **style: object,
) -> Html:
    """A text at (x, y), cut with an ellipsis to `width` px if given, the full text its title."""
    full = str(content)
    limit = None if width is None else max(2, int(width / (size * CHAR_WIDTH)))
    shown = full if limit is None or len(full) <= limit else full[: limit - 1] + "…"
    body = esc(full) if shown == full else join([shown, tag("title", full)])
    anchor_style = None if anchor == "start" else anchor
    style.setdefault("fill", TEXT)
    return _el("text", body, x=x, y=y, font_size=size, text_anchor=anchor_style, **style)


def _svg(width: float, height: float, label: str, parts: Sequence[object]) -> Html:
    """The chart; it keeps its size but shrinks with its aspect on a narrower screen."""
    width, height = math.ceil(width), math.ceil(height)
    frame = {"viewBox": f"0 0 {width} {height}", "width": width, "height": height, "role": "img"}
    shrink = {"class_": "chart", "style": "max-width:100%;height:auto"}
    return tag("svg", join(parts), xmlns=SVG_NAMESPACE, **frame, aria_label=label, **shrink)


def _heading(title: str, width: float) -> Html:
    return _text(8, 18, title, width - 16, size=13, font_weight="600", class_="chart-title")


def _no_data(title: str) -> Html:
    message = _text(SMALL_WIDTH / 2, 50, "no data", anchor="middle", fill=MUTED, class_="note")
    return _svg(SMALL_WIDTH, 68, f"{title}: no data", [_heading(title, SMALL_WIDTH), message])


def _clip(marks: Sequence[object], left: float, top: float, width: float, height: float) -> Html:
    """Marks cut at the plot area, with room for a marker on its edge: a nested svg clips."""
    x, y, w, h = left - 8.0, top - 8.0, width + 16.0, height + 16.0
    view = " ".join(map(_px, (x, y, w, h)))
    return _el("svg", join(marks), x=x, y=y, width=w, height=h, viewBox=view)


def _swatch(colour: str, shape: str = "box", dashed: bool = False, fill: str = "") -> Html:
    dash = "4 3" if dashed else None
    if shape == "line":
        return _line(0, 5, 16, 5, colour, stroke_width=2, stroke_dasharray=dash)
    if shape == "circle":
        return _circle(8, 5, 4.5, fill=colour, fill_opacity=0.6, stroke=colour)
    return _rect(0, 0, 16, 10, rx=2, fill=fill or colour, stroke=colour, stroke_dasharray=dash)


def _legend(entries: Sequence[tuple[str, Html]], top: float, width: float) -> tuple[Html, float]:
    """Swatch-and-name entries in rows from (8, top) within `width`: the markup and its height."""
    if not entries:
        return Html(""), 0.0
    items, column, row = [], 0.0, 0
    for name, swatch in entries:
        item_width = min(width, 21 + len(name) * 11 * 0.55 + 12)  # lowercase runs narrower
        if column and column + item_width > width:
            column, row = 0.0, row + 1
        entry = join([swatch, _text(21, 9.5, name, width - 22)])
        items.append(_el("g", entry, transform=f"translate({_px(8 + column)},{top + row * 18})"))
        column += item_width
    return _el("g", join(items), class_="legend"), (row + 1) * 18.0


def _series_legend(
    names: Sequence[str], top: float, width: float, shape: str
) -> tuple[Html, float]:
    """A legend of the series' colours, only when there is more than one series."""
    entries = [(name, _swatch(_colour(i), shape)) for i, name in enumerate(names)]
    return _legend(entries if len(names) > 1 else [], top, width)


def _axis(
    low: float, high: float, start: float, end: float, count: int = 5, fixed: bool = False
) -> _Axis:
    """Ticks at 1, 2 or 5 × 10^k; the domain widens to the outer ticks unless `fixed`."""
    if not high > low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw_step = (high - low) / count
    power = 10 ** math.floor(math.log10(raw_step))
    step = next(m * power for m in (1, 2, 5, 10) if raw_step <= m * power * (1 + 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    if fixed:
        first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    ticks = tuple(float(f"{i * step:.12g}") for i in range(first, last + 1))
    if not fixed:
        low, high = ticks[0], ticks[-1]
    return _Axis(low, high, start, end, ticks, step)


def _tick_format(step: float, percent: bool = False) -> Callable[[float], str]:
    """Tick values written with just the decimals their spacing needs."""
    scale, suffix = (100.0, "%") if percent else (1.0, "")
    decimals = max(0, -math.floor(math.log10(step * scale) + 1e-9))

    def format_tick(value: float) -> str:
        value *= scale
        if abs(value) >= 1e6 or decimals > 6:
            return f"{value:.3g}{suffix}"
        return f"{round(value, decimals) + 0.0:,.{decimals}f}{suffix}"

    return format_tick


def _x_axis(axis: _Axis, top: float, bottom: float, label: str, percent: bool = False) -> Html:
    write, parts = _tick_format(axis.step, percent), []
    for tick in axis.ticks:
        x = axis.at(tick)
        parts += [
            _line(x, top, x, bottom, GRID),
            _text(x, bottom + 14, write(tick), **TICK, anchor="middle"),
        ]
    parts.append(_line(axis.start, bottom, axis.end, bottom, AXIS_LINE))
    if label:
        middle, room = (axis.start + axis.end) / 2, abs(axis.end - axis.start)
        parts.append(_text(middle, bottom + 31, label, room, anchor="middle", class_="axis-label"))
    return _el("g", join(parts), class_="x-axis")


def _y_axis(axis: _Axis, left: float, right: float, label: str, percent: bool = False) -> Html:
    write, parts = _tick_format(axis.step, percent), []
    for tick in axis.ticks:
        y = axis.at(tick)
        parts += [
            _line(left, y, right, y, GRID),
            _text(left - 5, y + 3.5, write(tick), **TICK, anchor="end"),
        ]
    parts.append(_line(left, axis.start, left, axis.end, AXIS_LINE))
    if label:
        middle, room = (axis.start + axis.end) / 2, abs(axis.end - axis.start)
        turn = {"transform": f"rotate(-90 14 {_px(middle)})", "class_": "axis-label"}
        parts.append(_text(14, middle, label, room, anchor="middle", **turn))
    return _el("g", join(parts), class_="y-axis")


def _line_path(pixels: Sequence[tuple[float, float]]) -> str:
    """An SVG path through the points, leaving out points on the pixel just drawn."""
    commands, last = [], None
    for x, y in pixels:
        if (round(x), round(y)) != last:
            commands.append(f"{'M' if last is None else 'L'}{_px(x)},{_px(y)}")
            last = (round(x), round(y))
    return "".join(commands)


def _points(pairs: Sequence[Sequence[object]]) -> list[tuple[float, float]]:
    """The (x, y) pairs whose both values are finite numbers."""
    pairs = [(_finite(pair[0]), _finite(pair[1])) for pair in pairs if len(pair) >= 2]
    return [(x, y) for x, y in pairs if x is not None and y is not None]


def _hover_points(
    points: Sequence[tuple[float, float]],
    axes: tuple[_Axis, _Axis],
    colour: str,
    describe: Callable[[float, float], str],
    visible: bool,
) -> list[Html]:
    """A circle per point with its exact values as title (sampled on a long curve)."""
    if len(points) > MAX_HOVER_POINTS:
        last = len(points) - 1
        points = [points[round(i * last / (MAX_HOVER_POINTS - 1))] for i in range(MAX_HOVER_POINTS)]
    look = {"fill": colour, "class_": "point"} | ({} if visible else {"fill_opacity": 0})
    radius = 3.5 if visible else 5.0
    hovers = []
    for x, y in points:
        hovers.append(
            _circle(axes[0].at(x), axes[1].at(y), radius, tag("title", describe(x, y)), **look)
        )
    return hovers


def category_bars(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    title: str,
    value_format: str = "{:.1%}",
) -> Html:
    """Horizontal grouped bars: a group per category, a bar per series (NaN: no bar)."""
    names = [str(name) for name, _ in series]
    values = [
        [_finite(row[i]) if i < len(row) else None for i in range(len(categories))]
        for _, row in series
    ]
    present = [value for row in values for value in row if value is not None]
    if not present:
        return _no_data(title)
    width, label_width = SMALL_WIDTH, 104
    legend, legend_height = _series_legend(names, 28, width - 16, "box")
    top = 34 + legend_height
    bar_height = 14 if len(names) == 1 else 10 if len(names) <= 3 else 7
    group_height = len(names) * (bar_height + 2) - 2
    bottom = top + len(categories) * (group_height + 10) - 4
    axis = _axis(min(0.0, *present), max(0.0, *present) or 1.0, 14 + label_width, width - 48, 4)
    percent = value_format.rstrip("}").endswith("%")
    parts = [_heading(title, width), legend, _x_axis(axis, top - 6, bottom, "", percent)]
    for index, category in enumerate(categories):
        group_top = top + index * (group_height + 10)
        name_y = group_top + group_height / 2 + 4
        parts.append(_text(axis.start - 6, name_y, category, label_width, anchor="end"))
        for number, (name, row) in enumerate(zip(names, values, strict=True)):
            if row[index] is None:
                continue
            shown = value_format.format(row[index])
            left, right = sorted((axis.at(0.0), axis.at(row[index])))
            y = group_top + number * (bar_height + 2)
            hover = tag("title", f"{category}\n{name}: {shown} ({row[index]:.6g})")
            look = {"fill": _colour(number), "class_": "bar", "data_series": name}
            parts.append(_rect(left, y, right - left, bar_height, hover, **look))
            parts.append(_text(right + 3, y + bar_height / 2 + 3.5, shown, size=10, fill=MUTED))
    return _svg(width, bottom + 22, f"{title}: bars for {len(categories)} categories", parts)


def _step_outline(
    buckets: Sequence[tuple[float, float, float]], x_axis: _Axis, y_axis: _Axis
) -> str:
    """The histogram's outline: up, across and down each bucket, joined where buckets touch."""
    base, commands, previous_high = _px(y_axis.at(0.0)), [], None
    for low, high, share in buckets:
        left, right = x_axis.at(low), x_axis.at(high)
        if right - left < MIN_BAR_PX:
            left, right = (left + right - MIN_BAR_PX) / 2, (left + right + MIN_BAR_PX) / 2
        if low != previous_high:
            commands.append(("" if previous_high is None else f"V{base}") + f"M{_px(left)},{base}")
        commands.append(f"V{_px(y_axis.at(share))}H{_px(right)}")
        previous_high = high
    return "".join(commands) + f"V{base}"


def histogram(
    series: Sequence[tuple[str, Sequence[tuple[float, float, float]]]],
    title: str,
    x_label: str = "",
) -> Html:
    """Each series' buckets (low, high, share) as a step outline on one shared x axis."""
    names, cleaned = [str(name) for name, _ in series], []
    for _, buckets in series:
        rows = [[_finite(part) for part in bucket] for bucket in buckets if len(bucket) == 3]
        rows = [
            (min(low, high), max(low, high), share)
            for low, high, share in rows
            if None not in (low, high, share)
        ]
        cleaned.append(sorted(rows))
    every = [bucket for buckets in cleaned for bucket in buckets]
    if not every:
        return _no_data(title)
    width = SMALL_WIDTH
    legend, legend_height = _series_legend(names, 28, width - 16, "box")
    top = 38 + legend_height
    bottom, left, right = top + 140, 50, width - 14
    x_axis = _axis(min(b[0] for b in every), max(b[1] for b in every), left, right)
    shares = [b[2] for b in every]
    y_axis = _axis(min(0.0, *shares), max(0.0, *shares) or 1.0, bottom, top, 4)
    parts = [
        _heading(title, width),
        legend,
        _x_axis(x_axis, top, bottom, x_label),
        _y_axis(y_axis, left, right, "", percent=True),
    ]
    hovers = []
    for number, (name, buckets) in enumerate(zip(names, cleaned, strict=True)):
        colour = _colour(number)
        look = {"stroke": colour, "stroke_width": 1.8, "class_": "series", "data_series": name}
        # The first series (this span) lightly filled, the others outlined over it.
        fill = {"fill": colour, "fill_opacity": 0.2} if number == 0 else {}
        if buckets:
            parts.append(_path(_step_outline(buckets, x_axis, y_axis), name, **look, **fill))
        for low, high, share in buckets:
            x0, x1 = x_axis.at(low), max(x_axis.at(high), x_axis.at(low) + MIN_BAR_PX)
            y0, y1 = sorted((y_axis.at(0.0), y_axis.at(share)))
            hover = tag("title", f"{name}\n{low:.6g} to {high:.6g}\nshare {share:.6g}")
            look = {"fill": colour, "fill_opacity": 0, "class_": "bucket"}
            hovers.append(_rect(x0, y0, x1 - x0, y1 - y0, hover, **look))
    height = bottom + (38 if x_label else 22)
    return _svg(width, height, f"{title}: histogram of {len(names)} series", parts + hovers)


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    title: str,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] | None = None,
    markers: bool = True,
) -> Html:
    """Lines through each series' (x, y) points in the order given; `y_range` fixes the y axis."""
    names = [str(name) for name, _ in series]
    cleaned = [_points(points) for _, points in series]
    every = [point for points in cleaned for point in points]
    if not every:
        return _no_data(title)
    width = WIDE_WIDTH
    legend, legend_height = _series_legend(names, 28, width - 16, "line")
    top = 38 + legend_height
    bottom, left, right = top + 210, 62, width - 18
    x_axis = _axis(min(x for x, _ in every), max(x for x, _ in every), left, right, 6)
    low, high = map(_finite, y_range) if y_range else (None, None)
    if low is not None and high is not None and high > low:
        y_axis = _axis(low, high, bottom, top, fixed=True)
    else:
        y_axis = _axis(min(y for _, y in every), max(y for _, y in every), bottom, top)
    marks = []
    for number, (name, points) in enumerate(zip(names, cleaned, strict=True)):
        pixels = [(x_axis.at(x), y_axis.at(y)) for x, y in points]
        look = {"stroke": _colour(number), "stroke_width": 2, "data_series": name}
        marks.append(_path(_line_path(pixels), name, class_="series", **look))

        def describe(x: float, y: float, name: str = name) -> str:
            return f"{name}\n{x_label or 'x'} {x:.6g}\n{y_label or 'y'} {y:.6g}"

        visible = markers or len(points) == 1
        marks += _hover_points(points, (x_axis, y_axis), _colour(number), describe, visible)
    plot = _clip(marks, left, top, right - left, bottom - top)
    axes = [_x_axis(x_axis, top, bottom, x_label), _y_axis(y_axis, left, right, y_label)]
    label = f"{title}: {y_label} by {x_label}"
    return _svg(width, bottom + 40, label, [_heading(title, width), legend, *axes, plot])


def _unit_square(
    title: str,
    label: str,
    legend: Sequence[tuple[str, Html]],
    axis_labels: tuple[str, str],
    marks: Callable[[tuple[_Axis, _Axis]], list[Html]],
) -> Html:
    """A square [0, 1] × [0, 1] plot, a dashed y = x line under `marks((x_axis, y_axis))`."""
    width, left, size = SMALL_WIDTH, 56, 270
    legend_markup, legend_height = _legend(legend, 28, width - 16)
    top = 38 + legend_height
    x_axis = _axis(0.0, 1.0, left, left + size, fixed=True)
    y_axis = _axis(0.0, 1.0, top + size, top, fixed=True)
    dashed = {"stroke_dasharray": "5 4", "class_": "diagonal"}
    diagonal = _line(left, top + size, left + size, top, MUTED, **dashed)
    plot = _clip([diagonal, *marks((x_axis, y_axis))], left, top, size, size)
    axes = [
        _x_axis(x_axis, top, top + size, axis_labels[0]),
        _y_axis(y_axis, left, left + size, axis_labels[1]),
    ]
    return _svg(width, top + size + 40, label, [_heading(title, width), legend_markup, *axes, plot])


def roc_curve(
    points: Sequence[tuple[float, float]], title: str = "ROC curve", auc: float | None = None
) -> Html:
    """True against false positive rate (sorted by the latter), the chance line dashed."""
    curve = sorted(_points(points))
    if not curve:
        return _no_data(title)
    auc_value = _finite(auc)
    name = "model" if auc_value is None else f"model (AUC {auc_value:.4f})"
    legend = [(name, _swatch(_colour(0), "line")), ("chance", _swatch(MUTED, "line", dashed=True))]

    def describe(x: float, y: float) -> str:
        return f"false positive rate {x:.4f}\ntrue positive rate {y:.4f}"

    def marks(axes: tuple[_Axis, _Axis]) -> list[Html]:
        pixels = [(axes[0].at(x), axes[1].at(y)) for x, y in curve]
        line = _path(_line_path(pixels), name, stroke=_colour(0), stroke_width=2, class_="series")
        return [line, *_hover_points(curve, axes, _colour(0), describe, len(curve) == 1)]

    rates = ("False positive rate", "True positive rate")
    return _unit_square(title, f"{title}: {name}", legend, rates, marks)


def calibration_plot(
    buckets: Sequence[tuple[float, float, float]], title: str = "Calibration"
) -> Html:
    """Observed positive rate against mean prediction per bucket; a point's area ∝ its weight."""
    rows = [(_finite(b[0]), _finite(b[1]), _finite(b[2]) or 0.0) for b in buckets if len(b) == 3]
    cleaned = sorted((p, o, max(w, 0.0)) for p, o, w in rows if p is not None and o is not None)
    if not cleaned:
        return _no_data(title)
    heaviest = max(weight for _, _, weight in cleaned)
    name = "model (area ∝ weight)"
    legend = [
        (name, _swatch(_colour(0), "circle")),
        ("perfectly calibrated", _swatch(MUTED, "line", dashed=True)),
    ]

    def marks(axes: tuple[_Axis, _Axis]) -> list[Html]:
        pixels = [(axes[0].at(p), axes[1].at(o)) for p, o, _ in cleaned]
        parts = [_path(_line_path(pixels), stroke=_colour(0), stroke_opacity=0.6, class_="series")]
        look = {"fill": _colour(0), "fill_opacity": 0.6, "stroke": _colour(0), "class_": "point"}
        # Heaviest first, so a light bucket is never hidden under a heavy one.
        for p, o, w in sorted(cleaned, key=lambda bucket: (-bucket[2], bucket[:2])):
            radius = max(2.0, 12 * math.sqrt(w / heaviest)) if heaviest > 0 else 4.0
            hover = tag("title", f"predicted {p:.4f}\nobserved {o:.4f}\nweight {w:.6g}")
            parts.append(_circle(axes[0].at(p), axes[1].at(o), radius, hover, **look))
        return parts

    axis_labels = ("Mean predicted probability", "Observed positive rate")
    return _unit_square(title, f"{title}: {len(cleaned)} buckets", legend, axis_labels, marks)


def _wrap(text: str, chars: int, max_lines: int) -> list[str]:
    """Lines of at most `chars`, broken after _ - . or space or between camelCase humps."""
    lines, current = [], ""
    for piece in re.split(r"(?<=[_\s\-.])|(?<=[a-z0-9])(?=[A-Z])", text):
        while len(current) + len(piece) > chars:
            if current:
                lines.append(current)
                current = ""
            else:
                lines.append(piece[:chars])
                piece = piece[chars:]
        current += piece
    lines = [line.strip() for line in [*lines, current] if line.strip()] or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: chars - 1] + "…"
    return lines


def _layers(node_ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's longest path from a source; on a cycle only edges forward in input order count."""
    indegree = dict.fromkeys(node_ids, 0)
    for _, target in edges:
        indegree[target] += 1
    ready, order = [node for node in node_ids if indegree[node] == 0], []
    while ready:
        order.append(ready.pop(0))
        for target in [target for source, target in edges if source == order[-1]]:
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    if len(order) < len(node_ids):
        position = {node: index for index, node in enumerate(node_ids)}
        edges = [
            (source, target) for source, target in edges if position[source] < position[target]
        ]
        order = node_ids
    layer = dict.fromkeys(node_ids, 0)
    for node in order:
        for target in [target for source, target in edges if source == node]:
            layer[target] = max(layer[target], layer[node] + 1)
    return layer


def _tracks(links: list[tuple[str, str]], layer: dict[str, int], floors: list[float]) -> dict:
    """A y for each edge that skips a layer, below the boxes it passes and clear of the others.

    Edges from one source, or into one target, may share a track: they read as one bundle.
    """
    tracks: dict[tuple[str, str], tuple[float, int, int]] = {}
    spans = {link: sorted((layer[link[0]], layer[link[1]])) for link in links}
    for link in sorted(links, key=lambda link: spans[link][1] - spans[link][0]):
        low, high = spans[link]
        forward = layer[link[1]] > layer[link[0]]
        y = max(floors[low + 1 : high] if forward else floors[low : high + 1]) + 12
        while any(
            abs(y - other_y) < 7
            and max(low, other_low) < min(high, other_high)
            and other[0] != link[0]
            and other[1] != link[1]
            for other, (other_y, other_low, other_high) in tracks.items()
        ):
            y += 7
        tracks[link] = (y, low, high)
    return {link: y for link, (y, _, _) in tracks.items()}


def _node_box(
    node: GraphNode,
    lines: list[str],
    corner: tuple[float, float],
    size: tuple[float, float],
    font: int,
    detail_row: bool,
) -> Html:
    """A node's box, coloured by state, its label lines and detail centred inside."""
    state, (fill, border, dashed) = node.state, STATE_STYLES[node.state]
    (x, y), (width, height) = corner, size
    hover = tag("title", "\n".join(part for part in (node.label, state, node.detail) if part))
    look = {"stroke_width": 2 if state == "failed" else 1.2, "rx": 5, "fill": fill}
    box = _rect(
        x, y, width, height, stroke=border, stroke_dasharray="4 3" if dashed else None, **look
    )
    first = y + (height - len(lines) * (font + 2) - (font + 1) * detail_row) / 2 + font - 1
    texts = [
        _text(x + width / 2, first + i * (font + 2), line, size=font, anchor="middle")
        for i, line in enumerate(lines)
    ]
    if node.detail:
        detail_y, look = first + len(lines) * (font + 2), {"fill": MUTED, "class_": "detail"}
        texts.append(
            _text(x + width / 2, detail_y, node.detail, width - 6, font - 1, "middle", **look)
        )
    state_data = {"data_node": node.node_id, "data_state": state}
    return _el("g", join([hover, box, *texts]), class_="node", **state_data)


def pipeline_graph(
    nodes: Sequence[GraphNode], edges: Sequence[tuple[str, str]], title: str = "Pipeline"
) -> Html:
    """The DAG left to right in layers by longest path; an edge skipping layers runs below them."""
    by_id: dict[str, GraphNode] = {}
    for node in nodes:
        if node.state not in STATE_STYLES:
            node = dataclasses.replace(node, state="unknown")
        by_id.setdefault(node.node_id, node)
    if not by_id:
        return _no_data(title)
    ids = list(by_id)
    links = list(dict.fromkeys((s, t) for s, t in edges if s in by_id and t in by_id))
    layer = _layers(ids, links)
    columns = [[node for node in ids if layer[node] == c] for c in range(max(layer.values()) + 1)]
    backward = any(layer[target] <= layer[source] for source, target in links)  # on a cycle
    margin = 50 if backward else 12  # room left of the first column for an edge back into it
    pitch = min(180.0, (GRAPH_WIDTH - 2 * margin) / len(columns))
    gap = min(36.0, max(22.0, pitch * 0.2))
    box_width = pitch - gap
    font = 11 if (box_width - 8) / (11 * CHAR_WIDTH) >= 13 else 10
    chars = int((box_width - 8) / (font * CHAR_WIDTH))
    lines = {node: _wrap(by_id[node].label, chars, 3) for node in ids}
    detail_row = any(by_id[node].detail for node in ids)
    box_height = 12 + max(map(len, lines.values())) * (font + 2) + (font + 1) * detail_row
    width = max(2 * margin + len(columns) * pitch - gap, 420)
    swatches = [
        (state, _swatch(border, fill=fill, dashed=dashed))
        for state, (fill, border, dashed) in STATE_STYLES.items()
        if any(node.state == state for node in by_id.values())
    ]
    legend, legend_height = _legend(swatches, 28, width - 16)
    top, tallest = 40 + legend_height, max(map(len, columns))
    corner = {}  # each node's top-left; a layer is centred on the tallest one
    for c, column in enumerate(columns):
        for row, node in enumerate(column):
            offset = ((tallest - len(column)) / 2 + row) * (box_height + 16)
            corner[node] = (margin + c * pitch, top + offset)
    floors = [max(corner[node][1] + box_height for node in column) for column in columns]
    skipping = [link for link in links if layer[link[1]] != layer[link[0]] + 1]
    tracks = _tracks(skipping, layer, floors)
    middle = {node: corner[node][1] + box_height / 2 for node in ids}
    leave, arrive = {}, {}  # where an edge leaves or enters a box, as a share of its height
    for node in ids:
        # Spread down the box's side in the order of where the edges come from or go to.
        out = sorted((o for o in links if o[0] == node), key=lambda o: tracks.get(o, middle[o[1]]))
        into = sorted((i for i in links if i[1] == node), key=lambda i: tracks.get(i, middle[i[0]]))
        leave.update({link: (k + 1) / (len(out) + 1) for k, link in enumerate(out)})
        arrive.update({link: (k + 1) / (len(into) + 1) for k, link in enumerate(into)})
    edge_marks = []
    for link in links:
        (source, target), bend = link, gap / 2
        x0, y0 = corner[source][0] + box_width, corner[source][1] + box_height * leave[link]
        x1, y1 = corner[target][0], corner[target][1] + box_height * arrive[link]
        route = f"M{_px(x0)},{_px(y0)}"
        if link in tracks:
            y = _px(tracks[link])
            route += f"C{_px(x0 + bend)},{_px(y0)} {_px(x0 + bend)},{y} {_px(x0 + gap)},{y}"
            route += f"H{_px(x1 - gap)}"
            x0, y0 = x1 - gap, tracks[link]
        route += f"C{_px(x0 + bend)},{_px(y0)} {_px(x1 - bend)},{_px(y1)} {_px(x1 - 7)},{_px(y1)}"
        arrow = f"{_px(x1)},{_px(y1)} {_px(x1 - 7)},{_px(y1 - 3.5)} {_px(x1 - 7)},{_px(y1 + 3.5)}"
        marks = [
            tag("title", f"{by_id[source].label} → {by_id[target].label}"),
            _path(route, stroke=MUTED, stroke_width=1.2),
            _el("polygon", points=arrow, fill=MUTED),
        ]
        ends = {"data_source": source, "data_target": target}
        edge_marks.append(_el("g", join(marks), class_="edge", **ends))
    size = (box_width, box_height)
    node_marks = [_node_box(by_id[n], lines[n], corner[n], size, font, detail_row) for n in ids]
    height = max([*floors, *tracks.values()]) + 14
    label = f"{title}: {len(ids)} nodes, {len(links)} edges"
    return _svg(width, height, label, [_heading(title, width), legend, *edge_marks, *node_marks])
