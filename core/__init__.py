"""HeadRoom engine: a Qt-free library. Importing it does no work; heavy imports happen on first use."""

__version__ = "0.1.0"
