"""How many images go through the pipeline at once, and how that changes when memory runs out.

`auto` starts at one image, measures, and doubles while the time per image keeps improving and the measured
memory per image fits in what is free; an out-of-memory error halves the size, puts the images back in the
queue and caps the size below the one that failed. A fixed size backs off the same way instead of failing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from core.errors import HeadRoomError

log = logging.getLogger(__name__)

# Growing the batch must buy at least this much per image, or the sizer settles.
MIN_GAIN = 0.05
# Share of free memory a batch may plan to use.
MEMORY_HEADROOM = 0.8


class OutOfMemoryError(HeadRoomError):
    pass


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch.OutOfMemoryError and for the RuntimeErrors torch raises when an allocation fails."""
    try:
        import torch

        oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
        if oom_type is not None and isinstance(exc, oom_type):
            return True
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    if isinstance(exc, (RuntimeError, MemoryError)):
        text = str(exc).lower()
        return isinstance(exc, MemoryError) or "out of memory" in text or "failed to allocate" in text
    return False


@dataclass
class SizeRecord:
    size: int
    seconds_per_image: float
    bytes_per_image: int | None
    warmup: bool = False  # the first call pays one-off costs: never a baseline for comparison


@dataclass
class BatchSizer:
    requested: int | str  # "auto" or a positive int
    max_auto: int = 8
    current: int = 1
    ceiling: int | None = None  # largest size not known to fail
    settled: bool = False
    backoffs: list = field(default_factory=list)  # sizes that ran out of memory
    history: list = field(default_factory=list)  # SizeRecord per successful batch

    def __post_init__(self) -> None:
        if self.requested != "auto":
            size = int(self.requested)
            if size < 1:
                raise HeadRoomError(f"Batch size must be 'auto' or a whole number of at least 1, not {size}.")
            self.current = size
            self.settled = True
        elif self.max_auto < 1:
            raise HeadRoomError(f"The largest automatic batch size must be at least 1, not {self.max_auto}.")

    @property
    def auto(self) -> bool:
        return self.requested == "auto"

    def next_size(self, remaining: int) -> int:
        return max(1, min(self.current, remaining))

    def record_success(
        self, size: int, seconds: float, bytes_per_image: int | None = None, free_bytes: int | None = None
    ) -> None:
        per_image = seconds / max(size, 1)
        previous = self._best_per_image(size)
        self.history.append(SizeRecord(size, per_image, bytes_per_image, warmup=not self.history))
        if not self.auto or self.settled or size < self.current:
            return  # a short last batch says nothing about the chosen size
        if previous is not None and per_image > previous * (1 - MIN_GAIN):
            # Bigger did not pay: go back to the best size seen and stay there.
            self.current = min(self._sizes_by_speed()[0], self.ceiling or self.max_auto)
            self.settled = True
            log.info("Batch size settled at %d (%d was not faster per image).", self.current, size)
            return
        proposed = size * 2
        limit = min(self.max_auto, self.ceiling or self.max_auto)
        if bytes_per_image and free_bytes is not None:
            # `free_bytes` is measured after the batch released its activations.
            fits = int(free_bytes * MEMORY_HEADROOM // bytes_per_image)
            limit = min(limit, max(size, fits))
        if proposed > limit:
            self.current = max(size, min(limit, proposed))
            self.settled = self.current == size
            return
        self.current = proposed

    def record_out_of_memory(self, size: int) -> int:
        """Halves the size after `size` ran out of memory; raises when even one image does not fit."""
        self.backoffs.append(size)
        if size <= 1:
            raise OutOfMemoryError(
                "Out of memory while generating a single image: the model does not fit in the memory left. "
                "Close other programs using the GPU, use a smaller image size, or load the model in fp16."
            )
        self.ceiling = size - 1 if self.ceiling is None else min(self.ceiling, size - 1)
        self.current = max(1, size // 2)
        log.warning("Out of memory at batch size %d: retrying at %d.", size, self.current)
        return self.current

    def _best_per_image(self, size: int) -> float | None:
        smaller = [r.seconds_per_image for r in self.history if r.size < size and not r.warmup]
        return min(smaller) if smaller else None

    def _sizes_by_speed(self) -> list[int]:
        best: dict[int, float] = {}
        for record in self.history:
            if record.warmup and len(self.history) > 1:
                continue
            best[record.size] = min(best.get(record.size, float("inf")), record.seconds_per_image)
        return sorted(best, key=best.get)

    def as_dict(self) -> dict:
        return {
            "requested": self.requested,
            "final": self.current,
            "backoffs_at": list(self.backoffs),
            "tried": [{"size": r.size, "seconds_per_image": round(r.seconds_per_image, 4)} for r in self.history],
        }
