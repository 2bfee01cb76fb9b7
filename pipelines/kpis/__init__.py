"""Programme KPIs (`memberscore kpis`): monthly counts and rates by acquisition channel, tier
and RFM segment, acquisition-cohort tables and a self-contained HTML report (docs/kpis.md).
`tables` is pure over DuckDB, `report` draws the HTML, `job` reads the lake and writes files."""
