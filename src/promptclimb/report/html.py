"""HTML primitives for promptclimb's static reports (the run report, run_report.py; the grid report,
bench/report.py): the style sheet, the Content-Security-Policy that forbids any script should
escaping ever miss, escaped tables and PNGs as data URIs. Text shown is untrusted: ``table``
escapes every cell unless told the cells are already HTML."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4}code,pre{font-family:ui-monospace,monospace;font-size:12.5px}
pre{white-space:pre-wrap;background:#f8f8f8;padding:6px 8px;margin:2px 0;border-radius:4px}
.final{background:#e9f7ea}.failed{color:#b00}.duplicate{color:#a60}.complete{color:#060}
.msg{border-left:3px solid #ccc;padding-left:8px;margin:6px 0}.user{border-color:#69c}
.assistant{border-color:#6a6}.system{border-color:#aaa}.role{font-size:11px;color:#777;text-transform:uppercase}
details{margin:.4em 0}summary{cursor:pointer;font-weight:600}img{max-width:100%}
.warn{background:#fff4e0;border-left:4px solid #e90;padding:4px 8px}
"""


# Defence in depth beside escaping: the report runs no script and loads nothing but its own data: URIs.
CSP = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
       'style-src \'unsafe-inline\'">')


def table(header: list[str], rows: list[list[str]], raw: bool = False) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def png_data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
