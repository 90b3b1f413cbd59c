"""The codec: transforms (SCSM, CGM, CFTM, window attention) in :mod:`.nn` and :mod:`.model`, the
channel-wise autoregressive entropy model apart in :mod:`.entropy`, real bitstreams in :mod:`.bitstream`
and :mod:`.coding`, the loss and checkpoints.

It imports nothing from the study or the evaluation: a codec is usable without either.
"""
