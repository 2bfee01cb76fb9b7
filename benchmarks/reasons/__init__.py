"""Reason codes' SHAP values: LightGBM's exact TreeSHAP against the per-leaf tables of
`training.models.tree_shap` (speed per row and agreement of the top reasons)."""
