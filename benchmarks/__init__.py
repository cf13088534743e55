"""roost's benchmarks: `python -m benchmarks` (or `make bench`) prints one JSON document.

One small module per benchmark; each returns named results with medians,
percentiles, its target and whether the target was met. A benchmark that
fails records its error and the others still run. Targets are reported,
never asserted: the test suite does not depend on machine speed.
"""
