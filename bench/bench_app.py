"""Benchmark of the GUI's live threshold: how long from a slider move to updated readouts and heatmap marks,
on SDXL's structure (140 attention modules, up to 20 heads); writes reports/bench_app.json.

The structure is SDXL's real one (meta device, no weights). The head scores are seeded random numbers: this
measures time only, nothing here is shown to a user. Target: <= 50 ms per move (issue 7), including the
repaint of the window.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_app.py [--moves 60]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_MS = 50.0


class StructureOnlyProfile:
    """What the window reads from a profile to colour the heatmap: module names and kinds."""

    def __init__(self, names):
        from core.profiling.structure import ModuleRecord

        self.modules = [ModuleRecord(n, "cross" if n.endswith("attn2") else "self", 1, 1) for n in names]
        self.meta = {"prompts": ["benchmark"], "seeds": [0]}


def sdxl_structure():
    from core.pruning.structure import UnetStructure

    config = json.loads((ROOT / "resources" / "configs" / "sdxl" / "unet" / "config.json").read_text())
    return UnetStructure.from_config(config, dtype_bytes=2)


def seeded_scores(structure):
    import numpy as np

    from core.pruning.scores import HeadScores

    rng = np.random.default_rng(0)
    values = {n: rng.random(int(h)) + 0.5 for n, h in zip(structure.names, structure.heads.tolist())}
    return HeadScores(values, "activation_energy_rank", "module")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--moves", type=int, default=60)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import tempfile

    from PySide6.QtWidgets import QApplication

    from app.main_window import StudioWindow
    from app.settings import StudioSettings
    from app.workers.jobs import ModelSession

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        window = StudioWindow(settings=StudioSettings(Path(tmp) / "s.ini"), fragments_dir=Path(tmp) / "f")
        window.show()
        structure = sdxl_structure()
        window.session = ModelSession(None, structure, {"device": "cpu"})
        window.profile = StructureOnlyProfile(structure.names)
        window.scores = {"activation_energy_rank": seeded_scores(structure)}
        window.threshold_panel.set_value(1.0)
        app.processEvents()
        samples = []
        for i in range(args.moves):
            start = time.perf_counter()
            window.threshold_panel.slider.setValue(100 + (i * 137) % 800)  # 10 % .. 90 %, jumping about
            window.repaint()  # synchronous repaint: the move is only done once the user can see it
            samples.append((time.perf_counter() - start) * 1000)
        window.close()
    samples.sort()
    result = {
        "benchmark": "app threshold slider: select_heads + estimate + readouts + heatmap marks + repaint",
        "structure": {"family": "sdxl", "modules": len(structure.names), "heads_total": structure.total_heads,
                      "max_heads": int(structure.heads.max())},
        "moves": len(samples), "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 2), "max_ms": round(samples[-1], 2),
        "target_ms": TARGET_MS, "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                            "load_avg": [round(x, 2) for x in os.getloadavg()]},
    }
    result["pass"] = result["p95_ms"] <= TARGET_MS
    out = ROOT / "reports" / "bench_app.json"
    from core.io import write_json_atomic

    write_json_atomic(out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
