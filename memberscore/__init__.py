"""memberscore core, the bottom layer: the one settings object (decision settings included),
the member data contract, domain errors, the lake layout and what the commands print.

Every other package builds on this one and this one imports none of them. The data flows
memberscore → features | decisions | simulator → training → serving → pipelines
(docs/architecture.md; import-linter enforces it).
"""
