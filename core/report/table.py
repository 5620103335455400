"""The report as a readable plain-text table for the terminal."""

from __future__ import annotations

from core.report.build import CHECKLIST, EXTRA_ROWS, METRICS

STANDIN_WARNING = ("WARNING: the model has untrained stand-in weights: its images are noise, so the quality "
                   "numbers say nothing about pruning yet.")


def format_value(key: str, value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    unit = METRICS.get(key, ("", ""))[0]
    if unit == "fraction":
        return f"{value:+.1%}" if key.endswith(("delta_rel", "reduction", "overhead")) else f"{value:.1%}"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("ms", "MB", "img/min"):
        return f"{value:,.1f} {unit}"
    if unit == "images":
        return f"{value:.1f}"
    return f"{value:.4g}"


def _rows(headers, rows) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def format_report(report: dict) -> str:
    metrics, notes = report["metrics"], report.get("metric_notes", {})
    rows = []
    for category, name, keys in CHECKLIST + EXTRA_ROWS:
        for i, key in enumerate(keys):
            note = notes.get(key, "") if metrics.get(key) is None else ""
            rows.append([category if i == 0 else "", METRICS[key][1], format_value(key, metrics.get(key)),
                         note[:90]])
    parts = [
        (f"HeadRoom report (schema v{report['report_schema_version']}) - model {report['model'].get('name')}, "
         f"fragment {report['fragment'].get('path')}"),
        (f"{report['quality']['samples']} samples: {len(report['settings'].get('prompts', []))} prompts x "
         f"{len(report['settings'].get('seeds', []))} seeds, {report['settings'].get('steps')} steps, "
         f"device {report['environment'].get('device')}"),
        *([STANDIN_WARNING] if report["model"].get("trained") is False else []),
        "",
        _rows(["Category", "Metric", "Value", "Note"], rows),
        "",
        _rows(["Hypothesis", "Verdict", "Measured", "Threshold / reason"],
              [[h["id"], h["verdict"], _measured(h), f"{h['threshold']}: {h['reason']}"] for h in report["hypotheses"]]),
    ]
    regression = report.get("regression")
    if regression:
        parts += ["", (f"Regression gate vs {regression.get('baseline')}: {len(regression['drifted'])} drifted, "
                       f"{len(regression['improved'])} improved, {regression['compared']} compared")]
        if regression.get("environment_changes"):
            parts.append("  note: measured on a different setup (" + "; ".join(regression["environment_changes"])
                         + "): timings compare only on the same machine")
        for d in regression["drifted"]:
            parts.append(f"  DRIFTED {d['metric']}: {d['baseline']} -> {d['current']} ({d['why']})")
    return "\n".join(parts)


def _measured(h) -> str:
    value = h["measured"]
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if h["id"] in ("H1", "H2", "H3"):
        return f"{value:.1%}"
    if h["id"] == "H4":
        return f"{value:.2f}x"
    return f"{value:.1f}"
