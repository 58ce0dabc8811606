"""Imports every data-source module so that their ``@DATASETS.register`` lines run."""

from bench.data import cifar, miniimagenet, mnist, omniglot  # noqa: F401
from bench.data.glyphs import source  # noqa: F401
