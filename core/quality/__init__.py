"""Quality and performance measurements of a base model against a fragment (same prompts, same seeds).

Modules: `images` (conversions, difference image), `metrics` (SSIM, pHash, CLIP score, LPIPS availability),
`memory` (peak memory), `perf` (latency, throughput, weight bytes, break-even), `evaluate` (base vs fragment run).
Nothing heavy is imported here.
"""
