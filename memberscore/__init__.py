"""memberscore core: the one settings object, the member data contract, domain errors and the CLI.

The four working packages build on this one:
`pipelines` (ingest, importers, simulator, jobs), `features` (feature logic and the Feast repo),
`training` (labels, models, backtests, MLflow) and `serving` (the score API).
"""
