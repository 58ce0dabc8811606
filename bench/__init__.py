"""fewshot-bench: a reproducible benchmark suite for robust few-shot learning."""

__version__ = "0.1.0"
