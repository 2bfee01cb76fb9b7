"""Feast declarations of the member features: entity, snapshot source, one feature view per
catalog family and one feature service per model. Declarations only; `features.store` applies
them, and writes the generated `feature_store.yaml` next to this file."""
