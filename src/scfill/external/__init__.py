"""The tools people use today, run through scfill's interface for the benchmark.

- :mod:`scfill.external.alra`: ALRA, implemented from its paper (a registered method).
- :mod:`scfill.external.peers`: adapters for MAGIC and scVI (optional packages, imported
  only when a peer is fitted).

Importing :mod:`scfill.external.peers` registers the peers (``scfill.methods`` does it).
"""
