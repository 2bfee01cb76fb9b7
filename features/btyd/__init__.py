"""Native buy-till-you-die models: RFM summaries, BG/NBD, Pareto/NBD, Gamma-Gamma and CLV.

Pure maths on DataFrames (no I/O, no tracking): maximum-likelihood fits with scipy, per-customer
predictions usable as LightGBM features. Time is in weeks unless a summary says otherwise.
"""

from features.btyd.base import BaseTransactionModel, ConvergenceError
from features.btyd.bgnbd import BetaGeoModel
from features.btyd.gammagamma import GammaGammaModel
from features.btyd.paretonbd import ParetoNBDModel
from features.btyd.summary import holdout_summary, purchase_days, rfm_summary

__all__ = [
    "BaseTransactionModel",
    "BetaGeoModel",
    "ConvergenceError",
    "GammaGammaModel",
    "ParetoNBDModel",
    "holdout_summary",
    "purchase_days",
    "rfm_summary",
]
