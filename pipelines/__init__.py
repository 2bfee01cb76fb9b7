"""Pipelines, the top layer: jobs that move data, and the `memberscore` command.

Owns ingest into the lake (`ingest/`: readers, validation, quarantine, importers), the
simulation job (`simulate`), batch scoring and its report (`batch/`), campaign lists and
measurement (`campaign`), publishing score cards (`publish`), stage migration (`stages`), the
Spark engine (`spark/`), the end-to-end demo (`demo`, `demo_api`) and the CLI (`cli/`, the one
composition root). Each job is thin orchestration over pure logic kept in the lower layers.
"""
