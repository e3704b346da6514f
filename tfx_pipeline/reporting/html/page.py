"""The HTML document shell and its building blocks: escaping, sections, tables, badges.

Every page is one self-contained file: styles are inline and the Content-Security-Policy forbids
the browser to fetch anything (no script, font, image or style from anywhere), so a report opens
from disk on an offline machine and never calls home. Text is escaped unless it is `Html`.
"""

import html
from collections.abc import Iterable, Sequence

# Nothing may be fetched; inline styles and data: images (none used today) only.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
:root { --ok: #1a7f37; --fail: #c62828; --warn: #b26a00; --muted: #6e7781; --line: #d0d7de;
  --bg-alt: #f6f8fa; --accent: #0b57d0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  color: #1f2328; margin: 0 auto; max-width: 1240px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 2px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.subtitle { color: var(--muted); margin: 0 0 12px; }
nav { margin: 8px 0 4px; } nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; }
td.num, th.num { text-align: right; }
tr.fail td { background: #fdecea; }
tr.changed td { background: #fff8c5; }
code, .path { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
  word-break: break-all; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; font-weight: 600;
  color: #fff; background: var(--muted); }
.badge.ok { background: var(--ok); } .badge.fail { background: var(--fail); }
.badge.warn { background: var(--warn); }
.note { color: var(--muted); }
.grid { display: flex; flex-wrap: wrap; gap: 12px 24px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
details > summary { cursor: pointer; margin: 6px 0; }
svg { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
"""


class Html(str):
    """Markup that is already safe: inserted as is, never escaped again."""


def esc(value: object) -> Html:
    """`value` as text that HTML shows literally (Html passes through unchanged)."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[object], separator: str = "") -> Html:
    """Escaped parts (Html kept as is) joined into one piece of markup."""
    return Html(esc(separator).join(esc(part) for part in parts))


def tag(name: str, content: object = "", **attributes: object) -> Html:
    """`<name attr="...">content</name>`; attribute `class_` becomes `class`, None is left out."""
    rendered = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{esc(value)}"'
        for key, value in attributes.items()
        if value is not None
    )
    return Html(f"<{name}{rendered}>{esc(content)}</{name}>")


def badge(text: str, kind: str = "") -> Html:
    """A coloured label; kind is ok, fail, warn or '' (grey)."""
    return tag("span", text, class_=f"badge {kind}".strip())


def section(section_id: str, title: str, *content: object) -> Html:
    """A titled section the page's navigation links to by `section_id`."""
    return tag("section", join([tag("h2", title), *content]), id=section_id)


def table(
    headers: Sequence[object],
    rows: Iterable[Sequence[object]],
    numeric: Sequence[int] = (),
    row_classes: Sequence[str | None] | None = None,
    table_id: str | None = None,
) -> Html:
    """A table; columns whose index is in `numeric` align right; cells are escaped unless Html."""
    numeric_columns = set(numeric)
    head = join(
        tag("th", header, class_="num" if index in numeric_columns else None)
        for index, header in enumerate(headers)
    )
    body = []
    for row_index, row in enumerate(rows):
        cells = join(
            tag("td", cell, class_="num" if index in numeric_columns else None)
            for index, cell in enumerate(row)
        )
        row_class = row_classes[row_index] if row_classes is not None else None
        body.append(tag("tr", cells, class_=row_class))
    return tag(
        "table", join([tag("thead", tag("tr", head)), tag("tbody", join(body))]), id=table_id
    )


def key_values(pairs: Iterable[tuple[object, object]]) -> Html:
    """A two-column table of labels and values."""
    rows = join(tag("tr", join([tag("th", label), tag("td", value)])) for label, value in pairs)
    return tag("table", tag("tbody", rows), class_="key-values")


def document(
    title: str, body: object, subtitle: str = "", nav: Sequence[tuple[str, str]] = ()
) -> str:
    """A whole self-contained page: UTF-8, inline CSS, no fetch allowed, `nav` as (id, label)."""
    links = join(tag("a", label, href=f"#{anchor}") for anchor, label in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"{tag('h1', title)}"
        f"{tag('p', subtitle, class_='subtitle') if subtitle else ''}"
        f"{tag('nav', links) if nav else ''}"
        f"{esc(body)}</body></html>\n"
    )
