"""Evaluation metrics: Bjøntegaard deltas (:mod:`.bd`) and mAP@0.5 (:mod:`.detection`)."""

from .bd import BDError, BDResult, bd_map, bd_quality, bd_quality_result, bd_rate, bd_rate_result, pareto_front

__all__ = ["BDError", "BDResult", "bd_map", "bd_quality", "bd_quality_result", "bd_rate", "bd_rate_result",
           "pareto_front"]
