"""Neural building blocks of CSA-LIC, one idea per module.

``scsm`` (Eq. 1), ``cgm`` (Eq. 2), ``cftm`` (Eq. 3), ``transforms`` (window-attention
analysis and synthesis of Zou et al. 2022) and ``layers`` shared by them.
"""
