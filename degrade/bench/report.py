"""Reports over a results folder: one self-contained HTML page and a Markdown leaderboard.

The HTML page needs nothing outside itself (inline CSS, a few lines of JS to sort tables, bar charts as inline SVG,
thumbnails as data URIs), so it can be mailed, archived or attached to a paper's supplement as one file. Every
number is recomputed from the per-image lines (runner.aggregate), the same way summary.csv is.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from degrade.bench.runner import OUTPUTS, MethodResults, RunError, aggregate, load_results, summary_rows, track_order
from degrade.bench.suite import Suite, SuiteError, SuiteItem, open_suite
from degrade.sources import ImageError, load_image
from degrade.writer import atomic_write

#: Column label and number format of every score a table may show, in column order.
COLUMNS: dict[str, tuple[str, str]] = {
    "n": ("n", "d"),
    "failed": ("failed", "d"),
    "psnr": ("PSNR", ".2f"),
    "ssim": ("SSIM", ".4f"),
    "psnr_y": ("PSNR Y", ".2f"),
    "ssim_y": ("SSIM Y", ".4f"),
    "psnr_in": ("PSNR in mask", ".2f"),
    "ssim_in": ("SSIM in mask", ".4f"),
    "psnr_out": ("PSNR outside", ".2f"),
    "ssim_out": ("SSIM outside", ".4f"),
    "precision": ("precision", ".3f"),
    "recall": ("recall", ".3f"),
    "f1": ("F1", ".3f"),
    "iou": ("IoU", ".3f"),
    "seconds": ("s/img", ".3g"),
}
#: Method colours in charts and legends (matplotlib's tab10), by the method's place in name order.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
ORACLE = "\u2020"  # dagger after a method that receives the true mask
_ORACLE_NOTE = "receives the true damage mask (oracle), so it is not comparable with blind methods"
_MAX_FAILURES = 20  # failed images listed per method in the HTML page


class ReportError(RuntimeError):
    """The results folder cannot be reported on; the message says why in one line."""


@dataclass
class Bench:
    """A results folder as the report sees it: its methods, the suite they all ran on, tracks in suite order."""

    methods: list[MethodResults]
    suite_name: str
    checksum: str
    tracks: list[str]

    def track_rows(self, track: str) -> list[dict[str, Any]]:
        """One aggregate per method over every level of `track`, best mean PSNR first (methods with none last)."""
        rows = []
        for mr in self.methods:
            records = [r for r in mr.records.values() if r.get("track") == track]
            if records:
                rows.append({"method": mr.name, "info": mr.info, **aggregate(records)})
        return sorted(rows, key=lambda r: (r.get("psnr") is None, -(r.get("psnr") or 0.0), r["method"]))


def open_results(results: Path) -> Bench:
    """Read a results folder; all its methods must have run on one suite checksum."""
    try:
        methods = load_results(results)
    except RunError as exc:
        raise ReportError(str(exc)) from None
    if not methods:
        raise ReportError(
            f"{results}: no method results (expected folders with method.json, made by degrade-bench run)"
        )
    suites = {(_suite(mr).get("name"), _suite(mr).get("checksum")) for mr in methods}
    if len(suites) > 1:
        listed = ", ".join(f"{n} {c}" for n, c in sorted(suites, key=str))
        raise ReportError(f"{results}: methods ran on different suites ({listed})")
    name, checksum = suites.pop()
    return Bench(methods, str(name), str(checksum), track_order(methods))


def _suite(mr: MethodResults) -> dict[str, Any]:
    suite = mr.info.get("suite")
    return suite if isinstance(suite, dict) else {}


def _fmt(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "\u2013"
    spec = COLUMNS.get(key, ("", ".4g"))[1]
    return format(int(value) if spec == "d" else float(value), spec)


def _label(mr_info: dict[str, Any], name: str) -> str:
    return f"{name} {ORACLE}" if mr_info.get("oracle_mask") else name


# --------------------------------------------------------------------------- Markdown


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")  # text here never starts a line, so '#', '-', '+' are plain


def _md(text: str) -> str:
    """Text from results, escaped so Markdown shows it literally (and a '|' cannot break a table)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def markdown(bench: Bench) -> str:
    """The leaderboard: per track, methods ranked by mean PSNR over all its levels."""
    lines = [
        f"# Leaderboard: {_md(bench.suite_name)}",
        "",
        f"Suite {_md(bench.suite_name)}, checksum `{_md(bench.checksum)}`. Means over each track's images (all "
        "severity levels; in-mask scores over images with damage); mask scores pooled over pixels; s/img is the "
        f"mean time per image. {ORACLE} = the method {_ORACLE_NOTE}.",
    ]
    by_level = {(row["method"], row["track"], row["level"]): row for row in summary_rows(bench.methods)}
    for track in bench.tracks:
        rows = bench.track_rows(track)
        levels = sorted({level for _, t, level in by_level if t == track})
        keys = [k for k in ("psnr", "ssim", "psnr_in", "f1") if any(r.get(k) is not None for r in rows)]
        head = ["rank", "method", *(COLUMNS[k][0] for k in keys)]
        if len(levels) > 1:
            head.insert(3, "PSNR by level " + "/".join(map(str, levels)))
        head += ["failed", "s/img"]
        lines += ["", f"## Track {_md(track)}", "", "| " + " | ".join(head) + " |"]
        lines.append("|" + "|".join("---:" if h not in ("method",) else "---" for h in head) + "|")
        for rank, row in enumerate(rows, start=1):
            cells = [str(rank), _md(_label(row["info"], row["method"])), *(_fmt(k, row.get(k)) for k in keys)]
            if len(levels) > 1:
                per_level = (by_level.get((row["method"], track, level), {}).get("psnr") for level in levels)
                cells.insert(3, " / ".join(_fmt("psnr", psnr) for psnr in per_level))
            cells += [f"{row['failed']}/{row['n']}", _fmt("seconds", row.get("seconds"))]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(results: Path, out: Path) -> Path:
    """Write the Markdown leaderboard of a results folder to `out` (atomically)."""
    atomic_write(out, markdown(open_results(results)).encode())
    return out


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}code{background:#f3f3f3;padding:0 .2em}
table{border-collapse:collapse;margin:.6em 0}th,td{padding:.2em .6em;border-bottom:1px solid #e3e3e3}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3;text-align:left}
table.sortable th{cursor:pointer}table.sortable th[data-dir=asc]:after{content:" \\25B4"}
table.sortable th[data-dir=desc]:after{content:" \\25BE"}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:.9em;height:.9em;
margin-right:.3em;vertical-align:-.1em}.charts svg{margin-right:1.5em}
.grid{display:flex;flex-wrap:wrap;gap:.4em;margin:.6em 0 1.2em}figure{margin:0;width:192px;font-size:12px}
figure img{display:block;max-width:192px;max-height:192px;margin-bottom:2px}.failed{color:#b00}
.note{color:#555}
"""

_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){
var body=th.closest('table').tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th);
var asc=th.getAttribute('data-dir')!=='asc';
th.parentNode.querySelectorAll('th').forEach(function(h){h.removeAttribute('data-dir')});
th.setAttribute('data-dir',asc?'asc':'desc');
Array.from(body.rows).sort(function(a,b){var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;
if(x===''||y==='')return (x==='')-(y==='');var p=parseFloat(x),q=parseFloat(y);
var c=(isNaN(p)||isNaN(q))?x.localeCompare(y):p-q;return asc?c:-c;}).forEach(function(r){body.appendChild(r)});
});});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(key: str, value: Any) -> str:
    sort = "" if value is None else _e(value)
    numeric = key in COLUMNS or isinstance(value, int | float)
    return (
        f'<td data-v="{sort}"{" class=num" if numeric else ""}>{_e(_fmt(key, value) if key in COLUMNS else value)}</td>'
    )


def _table(rows: Sequence[dict[str, Any]], lead: Sequence[str]) -> str:
    """A sortable table: the `lead` text columns, then every score column that has a value in some row."""
    keys = [k for k in COLUMNS if any(r.get(k) is not None for r in rows)]
    head = "".join(f"<th>{_e(c)}</th>" for c in lead) + "".join(f"<th>{_e(COLUMNS[k][0])}</th>" for k in keys)
    body = []
    for row in rows:
        cells = [_cell(c, row.get(c)) for c in lead] + [_cell(k, row.get(k)) for k in keys]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _bars(title: str, levels: list[int], series: list[tuple[str, str, dict[int, float]]]) -> str:
    """Grouped bar chart as inline SVG: one group per level, one bar per method (name, colour, value by level)."""
    series = [s for s in series if s[2]]  # a method with no value here (all failed) gets no empty slot
    values = [v for _, _, by_level in series for v in by_level.values()]
    if not values:
        return ""
    step = 5.0 if max(values) - min(values) <= 40 else 10.0
    lo = max(0.0, step * math.floor((min(values) - 1) / step))
    hi = step * math.ceil((max(values) + 0.5) / step)
    bar, gap, left, top, height = 14, 18, 40, 26, 160
    group = len(series) * bar + gap
    width = max(left + len(levels) * group + 8, 7 * len(title) + 10)
    y = lambda v: top + height * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))  # noqa: E731
    parts = [f'<text x="4" y="15" font-size="13" font-weight="bold">{_e(title)}</text>']
    tick = lo
    while tick <= hi + 1e-9:
        parts.append(
            f'<line x1="{left}" x2="{left + len(levels) * group}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
        )
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end">{tick:g}</text>')
        tick += step
    for g, level in enumerate(levels):
        x0 = left + g * group + gap / 2
        for s, (name, colour, by_level) in enumerate(series):
            if level not in by_level:
                continue
            value = by_level[level]
            x, top_y = x0 + s * bar, y(value)
            parts.append(
                f'<rect x="{x:.1f}" y="{top_y:.1f}" width="{bar - 2}" height="{top + height - top_y:.1f}" '
                f'fill="{colour}"><title>{_e(name)}, level {level}: {value:.2f} dB</title></rect>'
            )
        label_x = x0 + len(series) * bar / 2
        parts.append(
            f'<text x="{label_x:.1f}" y="{top + height + 15}" font-size="11" text-anchor="middle">level {level}</text>'
        )
    return (
        f'<svg width="{width}" height="{top + height + 24}" viewBox="0 0 {width} {top + height + 24}" '
        f'role="img" aria-label="{_e(title)}">{"".join(parts)}</svg>'
    )


def _data_uri(image: np.ndarray, size: int, jpeg: bool) -> str:
    """A thumbnail (longest side at most `size` px) of an RGB or single-channel uint8 image as a data URI."""
    h, w = image.shape[:2]
    scale = min(1.0, size / max(h, w))
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg" if jpeg else ".png", image, [cv2.IMWRITE_JPEG_QUALITY, 85] if jpeg else [])
    if not ok:
        raise ReportError(f"cannot encode a thumbnail of shape {image.shape}")
    kind = "jpeg" if jpeg else "png"
    return f"data:image/{kind};base64,{base64.b64encode(buf.tobytes()).decode('ascii')}"


def _figure(caption: str, uris: Sequence[str], alt: str, extra: str = "") -> str:
    images = "".join(f'<img src="{uri}" alt="{_e(alt)}">' for uri in uris)
    return f"<figure>{images}<figcaption>{caption}{extra}</figcaption></figure>"


def _examples(items: Sequence[SuiteItem], track: str, count: int) -> list[SuiteItem]:
    """Up to `count` items of a track, taken in turn from each level so every severity is shown."""
    by_level: dict[int, list[SuiteItem]] = {}
    for item in items:
        if item.track == track:
            by_level.setdefault(item.level, []).append(item)
    chosen: list[SuiteItem] = []
    queues = [by_level[level] for level in sorted(by_level)]
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return chosen


def _grid(bench: Bench, item: SuiteItem, size: int) -> str:
    """One row of thumbnails: input, each method (with its predicted mask), target, true mask."""
    degraded, clean = load_image(item.degraded)[0], load_image(item.clean)[0]
    truth = load_image(item.mask)[0][..., 0]
    figures = [
        _figure(f"input<br>PSNR {_fmt('psnr', item.input.get('psnr'))}", [_data_uri(degraded, size, True)], "input")
    ]
    for mr in bench.methods:
        record = mr.records.get(item.key)
        name = _e(_label(mr.info, mr.name))
        if record is None or record.get("status") != "ok":
            reason = "not run" if record is None else f"failed: {record.get('error')}"
            figures.append(
                f'<figure><figcaption>{name}<br><span class="failed">{_e(reason)}</span></figcaption></figure>'
            )
            continue
        stem = mr.folder / OUTPUTS / item.key
        try:
            uris = [_data_uri(load_image(stem.with_name(stem.name + ".png"))[0], size, True)]
            if mr.info.get("predicts_mask"):
                uris.append(_data_uri(load_image(stem.with_name(stem.name + ".mask.png"))[0][..., 0], size, False))
        except ImageError as exc:
            figures.append(f'<figure><figcaption>{name}<br><span class="failed">{_e(exc)}</span></figcaption></figure>')
            continue
        extra = f"<br>F1 {_fmt('f1', record.get('f1'))}" if "f1" in record else ""
        figures.append(_figure(f"{name}<br>PSNR {_fmt('psnr', record.get('psnr'))}", uris, mr.name, extra))
    figures.append(_figure("target", [_data_uri(clean, size, True)], "target"))
    figures.append(_figure("true mask", [_data_uri(truth, size, False)], "true mask"))
    return f'<h4>{_e(item.key)}</h4><div class="grid">{"".join(figures)}</div>'


def _open_suite_for(bench: Bench, suite: Path | None) -> tuple[Suite | None, str]:
    """The suite whose images the grids show: `suite` (which must be the one the results were made on), else the
    folder the runs recorded; when that is gone or changed, None and why."""
    if suite is not None:
        try:
            opened = open_suite(suite)
        except SuiteError as exc:
            raise ReportError(str(exc)) from None
        if opened.checksum != bench.checksum:
            raise ReportError(f"{suite}: suite checksum {opened.checksum}, the results are for {bench.checksum}")
        return opened, ""
    reasons = []
    for root in sorted({str(_suite(mr).get("root")) for mr in bench.methods}):
        try:
            opened = open_suite(Path(root))
        except (SuiteError, OSError) as exc:
            reasons.append(str(exc))
            continue
        if opened.checksum == bench.checksum:
            return opened, ""
        reasons.append(f"{root}: suite checksum {opened.checksum}, the results are for {bench.checksum}")
    return None, "; ".join(reasons)


def _track_section(
    bench: Bench, track: str, rows: list[dict[str, Any]], colours: dict[str, str], suite: Suite | None, examples: int,
    size: int,
) -> list[str]:  # fmt: skip
    """A track's tables (all levels ranked, then by level), its bar charts and its example grids."""
    ranked = [{**row, "method": _label(row["info"], row["method"])} for row in bench.track_rows(track)]
    levels = sorted({row["level"] for row in rows})
    charts = []
    for key, title in (("psnr", "PSNR (dB)"), ("psnr_in", "PSNR inside the damage mask (dB)")):
        series = [
            (
                _label(mr.info, mr.name),
                colours[mr.name],
                {r["level"]: r[key] for r in rows if r["method"] == mr.name and r.get(key) is not None},
            )
            for mr in bench.methods
        ]
        charts.append(_bars(f"{track}: {title}", levels, series))
    legend = "".join(
        f'<span><i style="background:{colours[mr.name]}"></i>{_e(_label(mr.info, mr.name))}</span>'
        for mr in bench.methods
    )
    by_level = [{**r, "method": _label({"oracle_mask": r["oracle_mask"]}, r["method"])} for r in rows]
    section = [
        f"<h2>Track: {_e(track)}</h2>",
        "<h3>All levels</h3>",
        _table(ranked, ["method"]),
        f'<p class="legend">{legend}</p><div class="charts">{"".join(charts)}</div>',
        "<h3>By level</h3>",
        _table(by_level, ["method", "level"]),
    ]
    if suite is not None:
        section.append("<h3>Examples</h3>")
        section += [_grid(bench, item, size) for item in _examples(suite.items, track, examples)]
    return section


def _failures(bench: Bench) -> list[str]:
    """A table of failed images and their errors, at most _MAX_FAILURES per method."""
    failed = {mr.name: [r for r in mr.records.values() if r.get("status") != "ok"] for mr in bench.methods}
    total = sum(len(records) for records in failed.values())
    if not total:
        return []
    section = [f"<h2>Failures ({total})</h2><table><tr><th>method</th><th>image</th><th>error</th></tr>"]
    for name, records in failed.items():
        section += [
            f"<tr><td>{_e(name)}</td><td>{_e(r['key'])}</td><td>{_e(r.get('error'))}</td></tr>"
            for r in records[:_MAX_FAILURES]
        ]
    section.append("</table>")
    hidden = ", ".join(f"{_e(n)}: {len(r) - _MAX_FAILURES} more" for n, r in failed.items() if len(r) > _MAX_FAILURES)
    if hidden:
        section.append(f'<p class="note">Not listed: {hidden} (see each method\'s results.jsonl).</p>')
    return section


def html_page(bench: Bench, suite: Suite | None, why_no_suite: str = "", examples: int = 3, size: int = 192) -> str:
    """The whole report page as a string; `suite` gives the example grids (None: left out, `why_no_suite` says why)."""
    colours = {mr.name: PALETTE[i % len(PALETTE)] for i, mr in enumerate(bench.methods)}
    oracles = [mr.name for mr in bench.methods if mr.info.get("oracle_mask")]
    body = [
        f"<h1>Benchmark report: {_e(bench.suite_name)}</h1>",
        f"<p>Suite <b>{_e(bench.suite_name)}</b>, checksum <code>{_e(bench.checksum)}</code>. "
        f"{len(bench.methods)} methods: {_e(', '.join(mr.name for mr in bench.methods))}.</p>",
        f'<p class="note">{ORACLE} = the method {_ORACLE_NOTE}'
        + (f" ({_e(', '.join(oracles))})." if oracles else "; none here.")
        + " Means over the images of a group (in-mask scores over images with damage); precision, recall, F1 and "
        "IoU pooled over the pixels of the group; failed images are left out of the means. Click a column to sort.</p>",
    ]
    if suite is None:
        body.append(f'<p class="note">No image grids: the suite was not found ({_e(why_no_suite)}).</p>')
    rows_by_track: dict[str, list[dict[str, Any]]] = {}
    for row in summary_rows(bench.methods):
        rows_by_track.setdefault(row["track"], []).append(row)
    for track in bench.tracks:
        body += _track_section(bench, track, rows_by_track[track], colours, suite, examples, size)
    body += _failures(bench)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Benchmark: {_e(bench.suite_name)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + f"\n<script>{_JS}</script></body></html>\n"
    )


def write_html(results: Path, out: Path, suite: Path | None = None, examples: int = 3, size: int = 192) -> Path:
    """Write the self-contained HTML report of a results folder to `out` (atomically).

    `suite` is the suite folder for the image grids (ReportError if it is not the suite the results were made on);
    by default the folder recorded by the runs is used, and when that no longer holds the suite the grids are left
    out, with a note on the page saying why.
    """
    bench = open_results(results)
    opened, why = _open_suite_for(bench, suite)
    try:
        page = html_page(bench, opened, why, examples, size)
    except ImageError as exc:
        raise ReportError(f"{exc} (the suite or a results folder is damaged)") from None
    atomic_write(out, page.encode("utf-8"))
    return out
