"""Feast declarations of the member features: entity, snapshot source, one feature view per
catalog family and one feature service per model. Declarations only; `features.store` applies
them, and writes the generated `feature_store.yaml` next to this file."""

# The online view of published score cards (the score API's answers computed in advance). Named
# here, not in `definitions`, so code that only needs the name does not import Feast.
PUBLISHED_VIEW = "member_scores"
