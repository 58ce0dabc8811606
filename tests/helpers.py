"""Shared test data (test modules never import each other)."""

# The smallest valid suite: the base every malformed-suite case edits.
VALID_SUITE = """\
name: ok
datasets: [{name: glyphs, way: 5, shot: 1, query: 5}]
train: {steps: 2, meta_batch: 1}
eval: {episodes: 3}
baselines: [protonet]
threats: [clean]
"""
