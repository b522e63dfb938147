"""The tools people use today, run through scfill's interface for the benchmark.

- :mod:`scfill.external.alra`: ALRA, implemented from its paper (a registered method).
- :mod:`scfill.external.peers`: adapters for MAGIC and scVI (optional packages, imported
  only when a peer is fitted).
- :mod:`scfill.external.tensorflow_peers`: DCA and DeepImpute, run as a subprocess in their
  own TensorFlow env (:mod:`scfill.external.tensorflow_env` builds it; the child side is
  :mod:`scfill.external._tf_runner`).

Importing :mod:`scfill.external.peers` and :mod:`scfill.external.tensorflow_peers` registers
the peers (``scfill.methods`` does it).
"""
