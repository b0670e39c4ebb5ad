"""Test helpers: fixtures in the real on-disk formats, a fake Hub server and its environment, and the
scripts the tests start in fresh interpreters (Hub scenarios, distributed and killed scans)."""
