"""The coverage report as one HTML file: four plotly figures (graph_objects) with their data
inline and plotly.js inlined once in the head, so the page opens from disk with no network
(no CDN, no MathJax). Each chart's div has a stable id (CHART_IDS) for tests and links."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from tasks.reports.coverage import SENTIMENTS, Coverage

CHART_IDS = {"documents": "chart-documents", "sentiment": "chart-sentiment", "stance": "chart-stance", "stories": "chart-stories"}
SENTIMENT_COLORS = {"negative": "#c0392b", "neutral": "#95a5a6", "positive": "#27ae60"}
ENTITY_COLORS = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
STORY_LABEL = 70  # characters of a story's title on the bar chart's axis (the table has it whole)
SHOWN_STORIES = 15

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; padding-bottom: 0.3rem; }
.meta { color: #555; margin: 0.2rem 0; } .empty { color: #777; font-style: italic; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; } th, td { text-align: left; padding: 0.35rem 0.5rem; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #f6f6f6; } td.number { text-align: right; }
.evidence h3 { margin: 1.2rem 0 0.3rem; font-size: 1rem; } .evidence li { margin: 0.3rem 0; } .evidence em { color: #333; }
.label-favor { color: #27ae60; } .label-against { color: #c0392b; } .label-neutral { color: #777; }
"""


def plain(value: Any) -> str:
    """Text for a chart: plotly draws a subset of HTML in names and labels (<b>, <a href>),
    so a title or an outlet's name is escaped and shown as written."""
    return html.escape(str(value), quote=False)


def day_axis(days: list[str]) -> dict[str, Any]:
    """One category axis of the days with data, shared by the timelines: a date axis would
    stretch a few scattered days (a run's date beside years-old publication dates) into slivers."""
    return {"type": "category", "categoryorder": "array", "categoryarray": days, "title": {"text": "day (published, else the run's date; UTC)"}}


def documents_figure(per_source_day: pd.DataFrame, days: list[str]) -> go.Figure:
    """Chart 1: documents per day, a stacked bar per source."""
    figure = go.Figure()
    for source, rows in per_source_day.groupby("source", sort=True):
        figure.add_trace(
            go.Bar(
                x=rows["day"].tolist(),
                y=rows["n_documents"].astype(int).tolist(),
                name=plain(source),
                hovertemplate="%{x}: %{y} documents<extra>%{fullData.name}</extra>",
            )
        )
    figure.update_layout(barmode="stack", xaxis=day_axis(days), yaxis={"title": {"text": "documents"}}, legend={"title": {"text": "source"}}, height=420)
    return figure


def sentiment_figure(sentiment: pd.DataFrame, days: list[str]) -> go.Figure:
    """Chart 2: documents per day, stacked by sentiment; the hover gives the day's share."""
    figure = go.Figure()
    totals = sentiment["n_documents"].astype(int).clip(lower=1)
    for label in SENTIMENTS:
        counts = sentiment[label].astype(int)
        figure.add_trace(
            go.Bar(
                x=sentiment["day"].tolist(),
                y=counts.tolist(),
                name=label,
                marker={"color": SENTIMENT_COLORS[label]},
                customdata=(counts / totals).round(3).tolist(),
                hovertemplate="%{x}: %{y} " + label + " (%{customdata:.0%})<extra></extra>",
            )
        )
    figure.update_layout(barmode="stack", xaxis=day_axis(days), yaxis={"title": {"text": "documents"}}, legend={"title": {"text": "sentiment"}}, height=380)
    return figure


def stance_figure(stance: pd.DataFrame, entities: pd.DataFrame, days: list[str]) -> go.Figure:
    """Chart 3: per entity, the day's mean p_favor (solid) and p_against (dotted), one colour per entity."""
    figure = go.Figure()
    for n, (entity_id, name) in enumerate(zip(entities["entity_id"], entities["name"])):
        rows = stance[stance["entity_id"] == entity_id]
        color = ENTITY_COLORS[n % len(ENTITY_COLORS)]
        for label, dash in (("favor", "solid"), ("against", "dot")):
            figure.add_trace(
                go.Scatter(
                    x=rows["day"].tolist(),
                    y=rows[f"p_{label}"].astype(float).round(4).tolist(),
                    name=f"{plain(name)} · {label}",
                    legendgroup=str(entity_id),
                    mode="lines+markers",
                    line={"color": color, "dash": dash},
                    customdata=rows["n_documents"].astype(int).tolist(),
                    hovertemplate="%{x}: mean p_" + label + " %{y:.2f} over %{customdata} documents<extra>" + plain(name) + "</extra>",
                )
            )
    figure.update_layout(
        xaxis=day_axis(days), yaxis={"title": {"text": "mean probability"}, "range": [0, 1]}, legend={"title": {"text": "entity · stance"}}, height=440
    )
    return figure


def story_labels(stories: pd.DataFrame) -> list[str]:
    """Axis labels: titles cut to STORY_LABEL characters, made unique (two stories may share a
    title, and a category axis would stack them into one bar)."""
    labels, seen = [], set()
    for title, story_id in zip(stories["title"], stories["story_id"]):
        label = str(title) if len(str(title)) <= STORY_LABEL else str(title)[: STORY_LABEL - 1] + "…"
        if label in seen:
            label = f"{label} [{str(story_id)[:8]}]"
        seen.add(label)
        labels.append(plain(label))
    return labels


def stories_figure(stories: pd.DataFrame) -> go.Figure:
    """Chart 4: the largest stories' documents, a horizontal bar each, largest on top."""
    shown = stories.head(SHOWN_STORIES)
    figure = go.Figure(
        go.Bar(
            x=shown["n_documents"].astype(int).tolist(),
            y=story_labels(shown),
            orientation="h",
            name="documents",
            customdata=shown["n_sources"].fillna(0).astype(int).tolist(),
            hovertemplate="%{y}<br>%{x} documents from %{customdata} sources<extra></extra>",
            marker={"color": "#34495e"},
        )
    )
    figure.update_layout(
        yaxis={"autorange": "reversed", "automargin": True},
        # Whole documents: a tick per document while few, plotly's own ticks (whole numbers) beyond.
        xaxis={
            "title": {"text": "documents (copies included)"},
            "rangemode": "tozero",
            **({"dtick": 1} if shown["n_documents"].max() <= 10 else {"tickformat": "d"}),
        },
        height=max(260, 60 + 28 * len(shown)),
        showlegend=False,
    )
    return figure


def chart_html(figure: go.Figure, key: str) -> str:
    """A figure's div and its Plotly.newPlot call; plotly.js itself is in the page's head."""
    figure.update_layout(margin={"t": 30, "r": 20}, template="plotly_white")
    return pio.to_html(figure, include_plotlyjs=False, include_mathjax=False, full_html=False, div_id=CHART_IDS[key], config=PLOTLY_CONFIG)


def text(value: Any) -> str:
    """A cell's text, escaped; empty for a missing value."""
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else html.escape(str(value))


def evidence_html(evidence: pd.DataFrame, entities: pd.DataFrame) -> str:
    """Under chart 3: each entity's most confident stances, with the sentence, document and source."""
    parts = ['<div class="evidence">']
    for row in entities.itertuples():
        counts = ", ".join(f"{label} {int(getattr(row, label))}" for label in ("favor", "against", "neutral") if getattr(row, label))
        parts.append(
            f"<h3>{text(row.name)} <small>({text(row.type)}; {int(row.n_mentions)} mentions in {int(row.n_documents)} documents; {text(counts) or '-'})</small></h3><ul>"
        )
        for item in evidence[evidence["entity_id"] == row.entity_id].itertuples():
            parts.append(
                f'<li><span class="label-{text(item.label)}">{text(item.label)} {item.confidence:.2f}</span> '
                f"<em>{text(item.evidence)}</em> — {text(item.title) or text(item.doc_id)[:12]}"
                f"{', ' + text(item.source) if text(item.source) else ''} ({text(item.day)})</li>"
            )
        parts.append("</ul>")
    return "\n".join([*parts, "</div>"])


def stories_table_html(stories: pd.DataFrame) -> str:
    """Under chart 4: the largest stories with their span, sizes and top entities."""
    rows = [
        "<tr>"
        f"<td>{text(s.title)}</td><td>{text(s.first_seen)[:16].replace('T', ' ')}</td><td>{text(s.last_seen)[:16].replace('T', ' ')}</td>"
        f'<td class="number">{int(s.n_documents)}</td><td class="number">{int(s.n_sources) if pd.notna(s.n_sources) else ""}</td>'
        f"<td>{text(', '.join(s.top_entities))}</td>"
        "</tr>"
        for s in stories.head(SHOWN_STORIES).itertuples()
    ]
    header = "<tr><th>title</th><th>first seen (UTC)</th><th>last seen (UTC)</th><th>documents</th><th>sources</th><th>top entities</th></tr>"
    return f'<table id="stories-table"><thead>{header}</thead><tbody>{"".join(rows)}</tbody></table>'


def section(title: str, body: str | None, empty: str) -> str:
    """A titled section: its body, or a line saying why there is none."""
    shown = body if body is not None else f'<p class="empty">{html.escape(empty)}</p>'
    return f"<section><h2>{html.escape(title)}</h2>\n{shown}\n</section>"


def period_line(coverage: Coverage) -> str:
    days = sorted(coverage.documents["day"]) if not coverage.documents.empty else []
    span = f"; documents from {days[0]} to {days[-1]}" if days else ""
    return f"Covers {coverage.scope.describe()}{span}, under <code>{html.escape(coverage.root)}</code>."


def counts_line(coverage: Coverage) -> str:
    copies = coverage.n_rows - len(coverage.documents)
    extra = f" ({copies} further copies or analyses of them counted once)" if copies > 0 else ""
    unnamed = int(coverage.documents["source"].fillna("").eq("").sum()) if not coverage.documents.empty else 0
    without = f" ({unnamed} without one)" if unnamed else ""
    return f"{len(coverage.documents)} documents{extra} from {len(coverage.sources)} sources{without}; {len(coverage.stories)} stories."


def render_page(coverage: Coverage, generated_at: datetime) -> str:
    """The whole page as text: a header, then the four sections (or a line saying there is nothing yet)."""
    head = f"<h1>newsflow coverage report</h1>\n<p class='meta'>{period_line(coverage)}</p>\n<p class='meta'>Generated {generated_at:%Y-%m-%d %H:%M:%S %Z}.</p>"
    if coverage.empty:
        body = f"{head}\n<p class='empty'>Nothing to report yet: no documents for {html.escape(coverage.scope.describe())} under this output root. Run <code>newsflow run</code> first.</p>"
        return page(body, with_plotly=False)
    days, no_documents = coverage.days, coverage.documents.empty
    sections = [
        section(
            "Documents per source and day",
            None if no_documents else chart_html(documents_figure(coverage.per_source_day, days), "documents"),
            "No documents in scope.",
        ),
        section("Sentiment over time", None if no_documents else chart_html(sentiment_figure(coverage.sentiment, days), "sentiment"), "No documents in scope."),
        section(
            "Stance toward the most mentioned entities",
            None
            if coverage.entities.empty
            else chart_html(stance_figure(coverage.stance, coverage.entities, days), "stance") + evidence_html(coverage.evidence, coverage.entities),
            "No stances were judged in these documents.",
        ),
        section(
            "Largest stories",
            None if coverage.stories.empty else chart_html(stories_figure(coverage.stories), "stories") + stories_table_html(coverage.stories),
            "No stories yet.",
        ),
    ]
    return page("\n".join([head, f"<p class='meta'>{html.escape(counts_line(coverage))}</p>", *sections]), with_plotly=True)


def page(body: str, with_plotly: bool) -> str:
    # plotly.js inline (about 4.6 MB): the file must open with no network.
    script = f'<script type="text/javascript">{get_plotlyjs()}</script>' if with_plotly else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>newsflow coverage report</title>\n<style>{STYLE}</style>\n{script}\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
