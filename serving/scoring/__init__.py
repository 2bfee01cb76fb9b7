"""The scoring core shared by the API, publishing and batch scoring: the model bundle and where
it comes from (MLflow registry), the scoring context (bundle, store, domain, settings), the
vectorised frame scorer, one member's answer, published cards and the ports to the domain
libraries."""
