"""Features: per-member snapshots as of a cutoff and the Feast feature store.

Owns the feature catalog (`catalog`), the pure feature families (`families/`: RFM, behaviour,
profile, lifecycle, segments, tags, BTYD outlook, population statistics), the native BTYD maths
(`btyd/`: BG/NBD, Pareto/NBD, Gamma-Gamma), the snapshot of one cutoff (`snapshot`) and the job
that builds and stores snapshots (`build`), the Feast declarations (`feature_repo/`) and the store
(`store`, `online_bulk`).
"""
