"""scGACL (seeds/scgacl.md): its torch modules (:mod:`.module`) and losses (:mod:`.losses`);
the model facing the pipeline and the training phases follow on the training engine."""
