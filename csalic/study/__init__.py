"""The study: one ``params.yaml`` turned into data, Ray training jobs, evaluations and MLflow runs.

:mod:`.stages` states the workflow's stages once and :mod:`.pipeline` holds one function per
stage; :mod:`.layout` says where every file lives.  Torch-free at import, like :mod:`.layout`,
:mod:`.params`, :mod:`.jobs` and :mod:`.stages`, because the Snakefile imports them while it
parses the graph.
"""
