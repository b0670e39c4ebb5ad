"""Test configuration: the helpers package holds no tests and no doctests."""

collect_ignore = ["helpers"]
