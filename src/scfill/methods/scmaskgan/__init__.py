"""scMASKGAN (seeds/scmaskgan.md): the model facing the pipeline (:mod:`.model`), the gene
images (:mod:`.layout`), the networks (:mod:`.module`), the GAN training plan (:mod:`.plan`),
the candidate fill (:mod:`.impute`) and the choice of k (:mod:`.tuning`)."""

from scfill.methods.scmaskgan.model import ScMaskGan

__all__ = ["ScMaskGan"]
