"""The grid's own report: its tables and budget curves in one static HTML file."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from promptclimb.bench.grid import GridSpec
from promptclimb.bench.tables import markdown
from promptclimb.report.html import CSS


def _html_table(header: list[str], table: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in table)
    return f"<table><tr>{head}</tr>{rows}</table>"


def write_grid_report(spec: GridSpec, out: Path, tables: dict[str, Any], curves: list[Path]) -> Path:
    sections = []
    for name, (header, table) in tables["tables"].items():
        sections.append(f"<h2>{escape(name)}</h2>{_html_table(header, table)}")
    images = "".join(
        f'<h3>{escape(p.stem)}</h3><img alt="{escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}">' for p in curves)
    html = (f'<!doctype html><html><head><meta charset="utf-8"><title>promptclimb bench</title>'
            f"<style>{CSS}</style></head><body><h1>promptclimb bench: {escape(str(out))}</h1>"
            f"<pre>{escape(spec.model_dump_json(indent=1))}</pre>{''.join(sections)}"
            f"<h2>Budget curves</h2>{images}</body></html>")
    path = out / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


__all__ = ["markdown", "write_grid_report"]
