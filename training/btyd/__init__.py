"""Native buy-till-you-die models: RFM summaries, BG/NBD, Pareto/NBD, Gamma-Gamma and CLV.

Pure maths on DataFrames (no I/O, no tracking): maximum-likelihood fits with scipy, per-customer
predictions usable as LightGBM features. Time is in weeks unless a summary says otherwise.
"""

from training.btyd.base import BaseTransactionModel, ConvergenceError
from training.btyd.bgnbd import BetaGeoModel
from training.btyd.gammagamma import GammaGammaModel
from training.btyd.paretonbd import ParetoNBDModel
from training.btyd.summary import holdout_summary, purchase_days, rfm_summary

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
