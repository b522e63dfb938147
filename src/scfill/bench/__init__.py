"""Benchmarking scfill against the tools people use.

- :mod:`scfill.bench.datasets`: datasets (files, folders, presets), subsampled once.
- :mod:`scfill.bench.isolate`: one call in a child process (time limit, peak memory).
- :mod:`scfill.bench.runner`: the grid of methods × datasets × protocols × repeats, each run
  in its own process with a time limit, resumable.
- :mod:`scfill.bench.report` and :mod:`scfill.bench.figures`: tables and figures from the
  runner's results.

The peers themselves are in :mod:`scfill.external`.
"""
