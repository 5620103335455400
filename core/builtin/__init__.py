"""The built-in demo model `builtin:shapes`: architecture, loading, and (in train.py) its training."""
