"""KPI benchmark: `memberscore kpis` on the 1M-member lake."""
