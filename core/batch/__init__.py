"""Batch multi-seed generation: a job queue, progress with ETA, cancel that keeps finished images,
batch sizing that backs off on out-of-memory, a `parameters` PNG chunk on every image, a summary JSON.

Importing this package does no work; torch is imported when a batch runs.
"""

from core.batch.jobs import BatchJob, build_jobs, parse_seeds, read_prompts_file
from core.batch.runner import BatchSettings, BatchSummary, run_batch
from core.batch.sizing import BatchSizer, is_out_of_memory

__all__ = [
    "BatchJob",
    "BatchSettings",
    "BatchSizer",
    "BatchSummary",
    "build_jobs",
    "is_out_of_memory",
    "parse_seeds",
    "read_prompts_file",
    "run_batch",
]
