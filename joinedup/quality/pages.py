"""Static data-quality pages: ``var/reports/quality/<source>.html`` (that source's nights:
rows in, rows quarantined by rule, completeness of each canonical field) and ``index.html``
(every source's latest night). Counts and shares only, like the match report, which links here.

The template lives in this module so the pages need no package data beyond the code.
"""
from __future__ import annotations

from pathlib import Path

from jinja2 import DictLoader, Environment, select_autoescape
from sqlalchemy.orm import Session

from joinedup.canonical import person_fields
from joinedup.paths import reports_dir
from joinedup.quality.history import HistoryRow, batches_checked, source_history, sources_with_history

NIGHTS_SHOWN = 60

_STYLE = """
 body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 80rem; color: #1d2733; padding: 0 1rem; }
 h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d5dbe3; padding-bottom: .3rem; }
 .muted { color: #5b6b7c; } table { border-collapse: collapse; margin-top: .5rem; }
 th, td { text-align: left; padding: .3rem .55rem; border-bottom: 1px solid #e3e8ee; }
 th { background: #f3f6f9; font-weight: 600; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
 .bad { color: #a3261b; font-weight: 600; } .ok { color: #1c6b38; } .scroll { overflow-x: auto; }
"""

_SOURCE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Data quality · {{ source }}</title><style>{{ style }}</style></head>
<body>
<h1>Data quality: {{ source }}</h1>
<div class="muted">One row per checked batch, oldest first (the last {{ nights_shown }}). Counts and shares only.
 <a href="index.html">All sources</a>{% if data_docs %} · <a href="../data_docs/index.html">GX Data Docs</a>{% endif %}</div>
<h2>Rows in and rows quarantined</h2>
<table>
<tr><th>night</th><th>batch</th><th>status</th><th class="num">rows in</th><th class="num">quarantined</th><th class="num">rate</th><th>by rule</th><th>Data Docs</th></tr>
{% for r in rows %}<tr>
 <td><code>{{ r.night }}</code></td><td><code>{{ r.batch }}</code></td>
 <td>{% if r.status == 'refused' %}<span class="bad" title="{{ r.reason or '' }}">refused</span>{% else %}<span class="ok">{{ r.status }}</span>{% endif %}</td>
 <td class="num">{{ r.rows_in }}</td><td class="num">{{ r.rows_quarantined }}</td><td class="num">{{ '%.1f%%'|format(100 * r.quarantine_rate) }}</td>
 <td>{% for rule, n in r.by_rule.items() %}{{ rule }}: {{ n }}{% if not loop.last %}, {% endif %}{% else %}–{% endfor %}</td>
 <td>{% if r.data_docs %}<a href="../{{ r.data_docs }}">validation</a>{% else %}–{% endif %}</td>
</tr>{% else %}<tr><td colspan="8" class="muted">No batch checked yet.</td></tr>{% endfor %}
</table>
<h2>Completeness of each canonical field (% of rows with a value)</h2>
<div class="scroll"><table>
<tr><th>field</th>{% for r in rows %}<th class="num" title="{{ r.batch }}">{{ r.night }}</th>{% endfor %}</tr>
{% for f in fields %}<tr><td>{{ f }}</td>{% for r in rows %}{% set v = r.completeness.get(f) %}
 <td class="num">{{ '%.0f'|format(100 * v) if v is not none else '–' }}</td>{% endfor %}</tr>{% endfor %}
</table></div>
</body></html>
"""

_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Data quality</title><style>{{ style }}</style></head>
<body>
<h1>Data quality by source</h1>
<div class="muted">The latest checked batch of each source. Counts and shares only.{% if data_docs %}
 <a href="../data_docs/index.html">GX Data Docs</a> (every validation).{% endif %}</div>
<table>
<tr><th>source</th><th>last night</th><th>status</th><th class="num">rows in</th><th class="num">quarantined</th><th class="num">rate</th><th class="num">batches checked</th></tr>
{% for s in sources %}<tr>
 <td><a href="{{ s.source }}.html">{{ s.source }}</a></td>
 {% if s.last %}<td><code>{{ s.last.night }}</code></td>
 <td>{% if s.last.status == 'refused' %}<span class="bad">refused</span>{% else %}<span class="ok">{{ s.last.status }}</span>{% endif %}</td>
 <td class="num">{{ s.last.rows_in }}</td><td class="num">{{ s.last.rows_quarantined }}</td><td class="num">{{ '%.1f%%'|format(100 * s.last.quarantine_rate) }}</td>
 {% else %}<td colspan="5" class="muted">no batch checked yet</td>{% endif %}
 <td class="num">{{ s.batches }}</td>
</tr>{% else %}<tr><td colspan="7" class="muted">No source checked yet.</td></tr>{% endfor %}
</table>
</body></html>
"""

def _environment() -> Environment:
    """The two page templates by name, so Jinja compiles each once: kept in memory and under
    ``var/cache/gx_templates`` (the Data Docs template cache) for the next night steps, each
    a fresh process that would otherwise compile both on every check."""
    from joinedup.quality.data_docs import _template_bytecode, template_cache_dir

    return Environment(loader=DictLoader({"source.html": _SOURCE, "index.html": _INDEX}),
                       autoescape=select_autoescape(default_for_string=True, default=True),
                       bytecode_cache=_template_bytecode(template_cache_dir))


_env = _environment()


def quality_dir() -> Path:
    path = reports_dir() / "quality"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write(path: Path, html: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)


def render_source_page(source: str, rows: list[HistoryRow], data_docs: bool) -> str:
    fields = [f for f in person_fields() if f != "source_system"]
    return _env.get_template("source.html").render(source=source, rows=rows, fields=fields, style=_STYLE,
                                            nights_shown=NIGHTS_SHOWN, data_docs=data_docs)


def write_quality_pages(session: Session, sources: list[str] | None = None) -> Path:
    """Rewrite the pages of ``sources`` (default: every source with history) and the index;
    returns the index's path."""
    from joinedup.quality.data_docs import data_docs_index

    docs = data_docs_index() is not None
    known = sources_with_history(session)
    folder = quality_dir()
    for source in sources if sources is not None else known:
        rows = source_history(session, source, limit=NIGHTS_SHOWN)
        _write(folder / f"{source}.html", render_source_page(source, rows, docs))
    summary = []
    for source in sorted(set(known) | set(sources or [])):
        last = source_history(session, source, limit=1)
        summary.append({"source": source, "last": last[-1] if last else None, "batches": batches_checked(session, source)})
    index = folder / "index.html"
    _write(index, _env.get_template("index.html").render(sources=summary, style=_STYLE, data_docs=docs))
    return index


def quality_index() -> Path | None:
    """The data-quality index page, or None before the first check."""
    index = reports_dir() / "quality" / "index.html"
    return index if index.exists() else None
