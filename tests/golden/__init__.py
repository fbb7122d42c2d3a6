"""Golden tests: grouping results pinned per registered grouping version."""
