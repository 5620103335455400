"""A procedurally drawn world of flat coloured shapes: scenes, captions, paraphrases, held-out splits, a checker.

The built-in model `builtin:shapes` is trained on it; tests, benchmarks and the reuse harness draw prompt
sets and paraphrase sets from it. Importing this package does no work (numpy/PIL/scikit-image load on use).
"""

from core.shapes.world import COLOURS, HELDOUT_COMBOS, POSITIONS, SHAPES, SIZES, is_heldout_combo

__all__ = ["COLOURS", "HELDOUT_COMBOS", "POSITIONS", "SHAPES", "SIZES", "is_heldout_combo"]
