"""cnnImpute (seeds/cnnimpute.md): the model facing the pipeline (:mod:`.model`), the 1-D
CNN (:mod:`.module`) and the co-expressed input selection (:mod:`.coexpression`)."""

from scfill.methods.cnnimpute.model import CnnImpute

__all__ = ["CnnImpute"]
