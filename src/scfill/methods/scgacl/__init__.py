"""scGACL (seeds/scgacl.md): the model facing the pipeline (:mod:`.model`), its torch
modules (:mod:`.module`), losses (:mod:`.losses`) and training phases (:mod:`.plan`)."""

from scfill.methods.scgacl.model import ScGACL

__all__ = ["ScGACL"]
