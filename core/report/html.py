"""Self-contained HTML summary: verdicts, the metrics checklist, inline SVG plots and the image grid
(base | fragment | difference, base64 PNG). One file, no external assets, opens offline."""

from __future__ import annotations

from html import escape

from core.quality.images import difference_image, png_base64
from core.report.build import CHECKLIST, EXTRA_ROWS, METRICS
from core.report.svg import bar_chart, line_chart
from core.report.table import STANDIN_WARNING, _measured, format_value

VERDICT_COLOURS = {"PASS": "#1f7a3a", "FAIL": "#b3261e", "NOT MEASURED": "#6b6b6b"}

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}.verdict{color:#fff;font-weight:bold;padding:2px 6px;border-radius:3px}
.grid td{text-align:center;font-size:12px}.grid img{image-rendering:pixelated;display:block;margin:auto}
.note{color:#666;font-size:12px}.plots svg{margin-right:16px;border:1px solid #eee}
"""


def _throughput_series(report: dict) -> dict:
    series = {}
    for which in ("base", "fragment"):
        points = report.get("performance", {}).get(which, {}).get("throughput", {}).get("points", [])
        if points:
            series[which] = [(p["batch_size"], p["images_per_min"]) for p in points]
    return series


def plots(report: dict) -> str:
    m = report["metrics"]
    throughput = line_chart(_throughput_series(report), "Throughput vs batch size", "batch size", "images / min")
    bars = bar_chart(
        {
            "latency (ms)": {"base": m.get("performance.base_latency_ms"),
                             "fragment": m.get("performance.fragment_latency_ms")},
            "peak memory (MB)": {"base": m.get("memory.base_peak_mb"), "fragment": m.get("memory.fragment_peak_mb")},
            "weights (MB)": {"base": m.get("memory.base_weights_mb"),
                             "fragment": m.get("memory.fragment_weights_mb")},
        },
        "Base vs fragment", "")
    clip_groups = {}
    for s in report.get("samples", [])[:8]:
        if s.get("clip_base") is not None:
            clip_groups[f"#{len(clip_groups) + 1}"] = {"base": s["clip_base"], "fragment": s["clip_fragment"]}
    parts = [throughput, bars]
    if clip_groups:
        parts.append(bar_chart(clip_groups, "CLIP score per sample", ""))
    return '<div class="plots">' + "".join(parts) + "</div>"


def image_grid(report: dict, base_images, fragment_images, scale: int = 2, limit: int = 16) -> str:
    rows = [("<table class='grid'><tr><th>#</th><th>prompt / seed</th><th>base</th><th>fragment</th>"
             "<th>difference (x4)</th><th>SSIM</th><th>pHash</th><th>CLIP base / fragment</th></tr>")]
    samples = report.get("samples", [])
    for i, (a, b) in enumerate(list(zip(base_images, fragment_images))[:limit]):
        s = samples[i] if i < len(samples) else {}
        clip = ("-" if s.get("clip_base") is None
                else f"{s['clip_base']:.2f} / {s['clip_fragment']:.2f}")
        imgs = "".join(f"<td><img alt='{alt}' src='data:image/png;base64,{png_base64(im, scale)}'></td>"
                       for alt, im in (("base", a), ("fragment", b), ("difference", difference_image(a, b))))
        rows.append(f"<tr><td>{i + 1}</td><td>{escape(str(s.get('prompt', '')))}<br>seed {s.get('seed')}</td>{imgs}"
                    f"<td>{s.get('ssim', 0):.3f}</td><td>{s.get('phash_distance', '-')}</td><td>{clip}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def performance_details(report: dict) -> str:
    perf = report.get("performance", {})
    base, frag = perf.get("base"), perf.get("fragment")
    if not base or not frag:
        return "<p class='note'>Performance was not measured.</p>"
    mb = 1024 * 1024
    names = [k for k in base["weights_bytes"] if k != "total"] + ["total"]
    weight_rows = "".join(
        f"<tr><td>{escape(n)}</td><td>{base['weights_bytes'].get(n, 0) / mb:,.2f}</td>"
        f"<td>{frag['weights_bytes'].get(n, 0) / mb:,.2f}</td></tr>" for n in names)
    sweep_rows = []
    for which, data in (("base", base), ("fragment", frag)):
        t = data["throughput"]
        points = ", ".join(f"{p['batch_size']}: {p['images_per_min']:,.1f}" for p in t["points"]) or "-"
        seq = t.get("sequential_images_per_min")
        sweep_rows.append(f"<tr><td>{which}</td><td>{escape(points)}</td>"
                          f"<td>{'-' if seq is None else f'{seq:,.1f}'}</td><td>{escape(str(t.get('stopped')))}</td></tr>")
    method = base.get("peak_memory", {}).get("method", "")
    return (f"<h3>Resident weights per component (MB)</h3><table><tr><th>component</th><th>base</th>"
            f"<th>fragment</th></tr>{weight_rows}</table>"
            f"<h3>Throughput sweep (images/min by batch size)</h3><table><tr><th>model</th><th>batched</th>"
            f"<th>sequential</th><th>sweep ended</th></tr>{''.join(sweep_rows)}</table>"
            f"<p class='note'>Peak memory method: {escape(method)}; latency is the median of alternating "
            f"base/fragment runs.</p>")


def render_html(report: dict, base_images=(), fragment_images=()) -> str:
    m, notes = report["metrics"], report.get("metric_notes", {})
    hyp_rows = "".join(
        f"<tr><td>{h['id']}</td><td>{escape(h['statement'])}</td><td><span class='verdict' style='background:"
        f"{VERDICT_COLOURS[h['verdict']]}'>{h['verdict']}</span></td><td>{escape(_measured(h))}</td>"
        f"<td>{escape(h['threshold'])}</td><td>{escape(h['reason'])}</td></tr>" for h in report["hypotheses"])
    metric_rows = []
    for category, name, keys in CHECKLIST + EXTRA_ROWS:
        for i, key in enumerate(keys):
            note = notes.get(key, "")
            metric_rows.append(
                f"<tr><td>{escape(category) if i == 0 else ''}</td><td>{escape(METRICS[key][1])}</td>"
                f"<td>{escape(format_value(key, m.get(key)))}</td><td class='note'>{escape(note)}</td></tr>")
    regression = ""
    if report.get("regression"):
        r = report["regression"]
        items = "".join(f"<li><b>{escape(d['metric'])}</b>: {escape(str(d['baseline']))} &rarr; "
                        f"{escape(str(d['current']))} ({escape(d['why'])})</li>" for d in r["drifted"])
        regression = (f"<h2>Regression gate</h2><p>Baseline {escape(str(r.get('baseline')))}: "
                      f"{len(r['drifted'])} drifted, {len(r['improved'])} improved, {r['compared']} compared.</p>"
                      f"<ul>{items}</ul>")
    env, settings = report.get("environment", {}), report.get("settings", {})
    standin = (f"<p style='color:#b3261e;font-weight:bold'>{escape(STANDIN_WARNING)}</p>"
               if report["model"].get("trained") is False else "")
    title = f"HeadRoom report: {report['model'].get('name')} vs fragment {report['fragment'].get('path')}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{CSS}</style></head><body>
<h1>{escape(title)}</h1>
<p class="note">Report schema v{report['report_schema_version']}, HeadRoom {escape(report.get('headroom_version', ''))},
{escape(report.get('created_utc', ''))}; device {escape(str(env.get('device')))}, torch {escape(str(env.get('torch')))};
{report['quality']['samples']} samples ({len(settings.get('prompts', []))} prompts &times;
{len(settings.get('seeds', []))} seeds), {settings.get('steps')} steps, guidance {settings.get('guidance')}.</p>
{standin}<h2>Hypotheses</h2><table><tr><th>id</th><th>hypothesis</th><th>verdict</th><th>measured</th><th>threshold</th>
<th>reason</th></tr>{hyp_rows}</table>
{regression}
<h2>Plots</h2>{plots(report)}
<h2>Images</h2>{image_grid(report, base_images, fragment_images)}
<h2>Performance details</h2>{performance_details(report)}
<h2>Metrics</h2><table><tr><th>category</th><th>metric</th><th>value</th><th>note</th></tr>{''.join(metric_rows)}</table>
</body></html>
"""
