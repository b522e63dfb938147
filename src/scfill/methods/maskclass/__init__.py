"""MaskClass (seeds/maskclass.md): the model facing the pipeline (:mod:`.model`), its torch
module and losses (:mod:`.module`) and its gene scaling (:mod:`.scaler`)."""

from scfill.methods.maskclass.model import MaskClass

__all__ = ["MaskClass"]
