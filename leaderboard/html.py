"""The leaderboard as one static, self-contained HTML page (``--format html --out DIR``).

The page needs no server and no network: its CSS and JavaScript are inline and its charts are
inline SVG, so ``index.html`` opens from disk offline. One table per (env, task); clicking a
column header sorts by it (again: reverse); the agent and model selectors and the "reported
rows" switch hide rows; reported rows (the paper's figures) are shaded and tagged ``paper``;
each measured row expands to its provenance (versions, commit, seeds, success rule, data
sources, wall time), its learning curve (a trained agent whose ``metrics.jsonl`` is still on
disk) and its OOD trial curve (``empo-gym ood`` rows).

Example:
    >>> from empo_gym.leaderboard.reported import reported_entries
    >>> page = render_html(reported_entries(env="webshop"))
    >>> page.startswith("<!DOCTYPE html>"), page.count('class="entry reported"')
    (True, 3)
    >>> "<script src" in page or "<link" in page  # nothing loaded from elsewhere
    False
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from empo_gym.atomic_io import write_text_atomic
from empo_gym.leaderboard.board import row_key, rows
from empo_gym.leaderboard.entry import entry_source
from empo_gym.run_metrics import read_metrics

#: The page's file name inside ``--out``.
PAGE_FILE = "index.html"

#: Table columns: (header, row key, numeric).
_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("agent", "agent", False),
    ("model", "model", False),
    ("split", "split", False),
    ("success", "success_rate", True),
    ("score", "mean_score", True),
    ("± 95% CI", "ci95", True),
    ("episodes", "episodes", True),
    ("date", "date", False),
    ("source", "source", False),
)
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _e(value: Any) -> str:
    """Escape text for HTML content and attribute values."""
    return html.escape(str(value), quote=True)


def svg_line_chart(
    series: Mapping[str, Sequence[float]],
    *,
    x_label: str,
    y_label: str,
    references: Mapping[str, float] | None = None,
    width: int = 420,
    height: int = 220,
) -> str:
    """An inline SVG line chart: one polyline per series (x = index), dashed reference lines.

    Example:
        >>> svg = svg_line_chart({"success": [0.0, 0.5, 1.0]}, x_label="iteration", y_label="")
        >>> svg.startswith("<svg") and svg.count("<polyline") == 1
        True
    """
    refs = dict(references or {})
    values = [v for ys in series.values() for v in ys] + list(refs.values())
    if not values:
        raise ValueError("svg_line_chart: no values; expected at least one non-empty series")
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 1.0, hi + 1.0
    n = max((len(ys) for ys in series.values()), default=1)
    left, right, top, bottom = 46, 10, 10, 34
    pw, ph = width - left - right, height - top - bottom

    def x(i: float) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return top + ph * (hi - v) / (hi - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(y_label or ", ".join(series))} by {_e(x_label)}">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#bbb"/>',
    ]
    for v in (lo, hi):
        parts.append(
            f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="10">'
            f"{v:.3g}</text>"
        )
    parts.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 4}" text-anchor="middle" font-size="11">'
        f"{_e(x_label)} (0..{n - 1})</text>"
    )
    legend = []
    for k, (label, value) in enumerate(refs.items()):
        parts.append(
            f'<line class="ref" x1="{left}" x2="{left + pw}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}" '
            f'stroke="#888" stroke-dasharray="4 3"><title>{_e(label)}: {value:g}</title></line>'
        )
        legend.append((label, "#888", True, k))
    for k, (label, ys) in enumerate(series.items()):
        color = _PALETTE[k % len(_PALETTE)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(ys))
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}">'
            f"<title>{_e(label)}</title></polyline>"
        )
        legend.append((label, color, False, k))
    for row, (label, color, dashed, _) in enumerate(legend):
        ly = top + 12 + 13 * row
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        parts.append(
            f'<line x1="{left + 6}" x2="{left + 22}" y1="{ly - 4}" y2="{ly - 4}" '
            f'stroke="{color}" stroke-width="2"{dash}/>'
            f'<text x="{left + 26}" y="{ly}" font-size="10">{_e(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def learning_curve(entry: Mapping[str, Any]) -> dict[str, list[float]] | None:
    """A trained agent's per-iteration ``success`` and ``return``, from the ``metrics.jsonl``
    its row names (``config.agent.training.metrics``); None when the row names none or the
    file is gone (rows copied from another machine)."""
    training = ((entry.get("config") or {}).get("agent") or {}).get("training") or {}
    path = training.get("metrics") if isinstance(training, dict) else None
    if not path or not Path(path).is_file():
        return None
    history = read_metrics(path)
    curves = {
        key: [float(r[key]) for r in history if isinstance(r.get(key), (int, float))]
        for key in ("success", "return")
    }
    return {k: v for k, v in curves.items() if v} or None


def ood_curve(entry: Mapping[str, Any]) -> tuple[list[float], dict[str, float]] | None:
    """An ``empo-gym ood`` row's mean score per trial and the paper's best-of-10 figures."""
    config = entry.get("config") or {}
    trials = config.get("per_trial")
    if not isinstance(trials, list) or not trials:
        return None
    scores = [float(t["mean_score"]) for t in trials if "mean_score" in t]
    paper = config.get("paper_reference") or {}
    refs = {
        f"paper {name} (best of 10)": float(value)
        for name, value in paper.items()
        if isinstance(value, (int, float))
    }
    return (scores, refs) if scores else None


def _seeds(seeds: Sequence[int]) -> str:
    if seeds and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}..{seeds[-1]} ({len(seeds)})"
    return ", ".join(map(str, seeds))


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _provenance(entry: Mapping[str, Any]) -> str:
    """The expandable part of a measured row: provenance, comparison, curves."""
    prov = entry["provenance"]
    known = {
        "versions",
        "python",
        "platform",
        "git_commit",
        "seeds",
        "success_rule",
        "date",
        "wall_time_s",
    }
    items = [
        ("versions", ", ".join(f"{k} {v}" for k, v in prov["versions"].items())),
        ("commit", prov["git_commit"] or "unknown (not a git checkout)"),
        ("seeds", _seeds(prov["seeds"])),
        ("success rule", prov["success_rule"] or "-"),
        ("wall time", f"{prov['wall_time_s']:.1f} s"),
        ("date", prov["date"]),
        ("python", f"{prov['python']} on {prov['platform']}"),
    ]
    # what the env reported about its data (catalogue / noun method, embedder, simulator)
    items += [(f"data: {k}", _flat(v)) for k, v in prov.items() if k not in known]
    if entry.get("checkpoint"):
        items.append(("checkpoint", entry["checkpoint"]))
    comp = entry.get("comparison")
    if comp:
        items.append(
            (
                "vs untrained",
                f"{comp['mean']:+.1f} (95% CI {comp['ci95_low']:+.1f}..{comp['ci95_high']:+.1f},"
                f" paired over {comp['episodes']} episodes)",
            )
        )
    if entry.get("_source"):
        items.append(("file", entry["_source"]))
    parts = ['<dl class="prov">']
    parts += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items]
    parts.append("</dl>")
    curve = learning_curve(entry)
    if curve:
        parts.append("<figure><figcaption>learning curve</figcaption>")
        parts.append(svg_line_chart(curve, x_label="iteration", y_label="success, return"))
        parts.append("</figure>")
    ood = ood_curve(entry)
    if ood:
        scores, refs = ood
        parts.append("<figure><figcaption>OOD trials (memory, no weight updates)</figcaption>")
        parts.append(
            svg_line_chart(
                {"mean score": scores}, x_label="trial", y_label="mean score", references=refs
            )
        )
        parts.append("</figure>")
    return "".join(parts)


def _cell(row: Mapping[str, Any], key: str, numeric: bool) -> str:
    value = row[key]
    if value is None or value == "-":
        return '<td data-v="">-</td>'
    if key == "success_rate":
        text = f"{value:.3f}"
    elif key in ("mean_score", "ci95"):
        text = f"{value:.1f}"
    elif key == "date":
        text = str(value)[:19]
    else:
        text = str(value)
    if key == "source" and value == "reported":
        text = '<span class="badge">paper</span> reported'
    else:
        text = _e(text)
    sort_value = _e(value if numeric else str(value).lower())
    return f'<td class="{"num" if numeric else ""}" data-v="{sort_value}">{text}</td>'


def _entry_body(row: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    source = entry_source(entry)
    attrs = (
        f'class="entry {source}" data-agent="{_e(row["agent"])}" data-model="{_e(row["model"])}"'
    )
    cells = "".join(_cell(row, key, numeric) for _, key, numeric in _COLUMNS)
    if source == "reported":
        ref = entry["reference"]
        note = f" {ref['note']}." if ref.get("note") else ""
        title = f"{ref['citation']}; {ref['hardware']}.{note}"
        return (
            f'<tbody {attrs}><tr title="{_e(title)}"><td class="toggle-cell"></td>{cells}</tr>'
            "</tbody>"
        )
    return (
        f"<tbody {attrs}><tr>"
        '<td class="toggle-cell"><button type="button" class="toggle" aria-expanded="false" '
        'title="provenance">▸</button></td>'
        f"{cells}</tr>"
        f'<tr class="details" hidden><td colspan="{len(_COLUMNS) + 1}">{_provenance(entry)}'
        "</td></tr></tbody>"
    )


def _options(values: Iterable[str]) -> str:
    return "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in sorted(set(values)))


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em}h2{font-size:1.1em;margin:1.6em 0 .4em}
.controls{display:flex;gap:1.2em;align-items:center;flex-wrap:wrap;margin-bottom:1em}
table{border-collapse:collapse;background:#fff;min-width:60%}
th,td{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#eee;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tbody.reported tr{background:#fff4d6;font-style:italic;color:#5a4a1a}
.badge{display:inline-block;font-style:normal;font-size:.75em;font-weight:600;padding:0 .4em;
border-radius:.6em;background:#c98a00;color:#fff}
button.toggle{border:0;background:none;cursor:pointer;font-size:1em;padding:0 .2em}
tr.details td{background:#f6f8fb}
dl.prov{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;margin:.3em 0}
dl.prov dt{font-weight:600}dl.prov dd{margin:0;word-break:break-all}
figure{display:inline-block;margin:.5em 1em .5em 0}figcaption{font-size:.85em;color:#555}
.empty{color:#777;font-style:italic}
footer{margin-top:2em;font-size:.85em;color:#555}
"""

_JS = """
(function () {
  "use strict";
  function cellValue(body, col) {
    var cell = body.rows[0].cells[col + 1];
    return cell ? cell.getAttribute("data-v") : "";
  }
  function compare(a, b, numeric) {
    if (a === "" && b === "") return 0;
    if (a === "") return 1;
    if (b === "") return -1;
    if (numeric) return parseFloat(a) - parseFloat(b);
    return a < b ? -1 : a > b ? 1 : 0;
  }
  document.querySelectorAll("table.board").forEach(function (table) {
    table.querySelectorAll("th[data-col]").forEach(function (th) {
      th.addEventListener("click", function () {
        var col = parseInt(th.getAttribute("data-col"), 10);
        var numeric = th.getAttribute("data-num") === "1";
        var asc = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("th[data-col]").forEach(function (other) {
          other.removeAttribute("aria-sort");
        });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var bodies = Array.prototype.slice.call(table.tBodies);
        bodies.sort(function (a, b) {
          var c = compare(cellValue(a, col), cellValue(b, col), numeric);
          return asc ? c : -c;
        });
        bodies.forEach(function (body) { table.appendChild(body); });
      });
    });
  });
  document.querySelectorAll("button.toggle").forEach(function (button) {
    button.addEventListener("click", function () {
      var details = button.closest("tbody").querySelector("tr.details");
      var open = details.hidden;
      details.hidden = !open;
      button.setAttribute("aria-expanded", open ? "true" : "false");
      button.textContent = open ? "\\u25BE" : "\\u25B8";
    });
  });
  var agent = document.getElementById("filter-agent");
  var model = document.getElementById("filter-model");
  var reported = document.getElementById("filter-reported");
  function applyFilters() {
    document.querySelectorAll("section.group").forEach(function (section) {
      var shown = 0;
      section.querySelectorAll("tbody.entry").forEach(function (body) {
        var ok = (!agent.value || body.getAttribute("data-agent") === agent.value) &&
          (!model.value || body.getAttribute("data-model") === model.value) &&
          (reported.checked || !body.classList.contains("reported"));
        body.hidden = !ok;
        if (ok) shown += 1;
      });
      section.querySelector(".empty").hidden = shown > 0;
    });
  }
  [agent, model, reported].forEach(function (el) {
    el.addEventListener("change", applyFilters);
  });
  applyFilters();
})();
"""


def render_html(entries: Iterable[dict[str, Any]], *, title: str = "empo-gym leaderboard") -> str:
    """The whole page as one string (measured and reported entries, in any order)."""
    pairs = [(rows([e])[0], e) for e in entries]
    pairs.sort(key=lambda p: row_key(p[0]))
    groups: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for row, entry in pairs:
        groups.setdefault((row["env"], row["task"]), []).append((row, entry))
    header = "".join(
        f'<th data-col="{i}" data-num="{int(numeric)}" scope="col">{_e(name)}</th>'
        for i, (name, _, numeric) in enumerate(_COLUMNS)
    )
    sections = []
    for (env, task), members in groups.items():
        heading = f"{env} / {task}" if task != "-" else f"{env} (all tasks)"
        bodies = "".join(_entry_body(row, entry) for row, entry in members)
        sections.append(
            f'<section class="group" data-env="{_e(env)}" data-task="{_e(task)}">'
            f"<h2>{_e(heading)}</h2>"
            f'<table class="board"><thead><tr><th class="toggle-cell" scope="col"></th>{header}'
            f"</tr></thead>{bodies}</table>"
            '<p class="empty" hidden>no rows match the filters</p></section>'
        )
    measured = sum(1 for _, e in pairs if entry_source(e) == "measured")
    references = {
        (e["reference"]["citation"], e["reference"]["url"], e["reference"]["hardware"])
        for _, e in pairs
        if entry_source(e) == "reported"
    }
    footer = "".join(
        f'<p><span class="badge">paper</span> {_e(cit)} (<a href="{_e(url)}">{_e(url)}</a>);'
        f" {_e(hw)}. Reported figures, not runs of this code.</p>"
        for cit, url, hw in sorted(references)
    )
    agents = _options(row["agent"] for row, _ in pairs)
    models = _options(row["model"] for row, _ in pairs)
    summary = f"{measured} measured runs, {len(pairs) - measured} reported rows"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><p>{_e(summary)}. Click a column header to sort; "
        "▸ opens a run's provenance and curves.</p>"
        '<div class="controls">'
        f'<label>agent <select id="filter-agent"><option value="">all</option>{agents}</select>'
        "</label>"
        f'<label>model <select id="filter-model"><option value="">all</option>{models}</select>'
        "</label>"
        '<label><input type="checkbox" id="filter-reported" checked> reported rows '
        '(<span class="badge">paper</span>)</label></div>'
        + ("".join(sections) or '<p class="empty">no entries</p>')
        + f"<footer>{footer}<p>Generated by empo-gym.</p></footer>"
        f"<script>{_JS}</script></body></html>\n"
    )


def write_html(
    entries: Iterable[dict[str, Any]], out_dir: str | os.PathLike[str], **kwargs: Any
) -> Path:
    """Write the page to ``out_dir/index.html`` atomically (the directory is created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(out / PAGE_FILE, render_html(entries, **kwargs))
