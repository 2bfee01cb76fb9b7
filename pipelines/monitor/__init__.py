"""`memberscore monitor`: drift of features and scores and the matured performance of each
champion (churn, activation, clv), the findings past `settings.monitor`, an MLflow run per
invocation (experiment `memberscore-monitor`) and a self-contained HTML report. The figures are
computed by `training.monitoring`; this package reads, scores and writes."""
