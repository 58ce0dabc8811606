"""Imports every data-source module so that their ``@DATASETS.register`` lines run."""

from bench.data import cifar, glyphs, miniimagenet, mnist, omniglot  # noqa: F401
