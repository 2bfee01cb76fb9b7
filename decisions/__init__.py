"""Lifecycle stages and the next-best-action engine, as a library with no I/O of its own.

Owns: stage rules (`stages`), the marketer-editable action catalogue (`catalogue`, the shipped
`actions.yaml`), the uplift learner (`uplift`), guardrails (consent, cooldowns, caps, the
persistent control group: `guardrails`), the decision engine (`engine`) and offline policy
evaluation (`evaluation`). Every function takes DataFrames or arrays and an explicit `now` /
as-of; reading the lake, MLflow and the CLI live in `training.jobs.uplift` and
`pipelines.cli.decision_commands`. See docs/decisions.md.
"""
