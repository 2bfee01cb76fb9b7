"""Programme KPIs (`memberscore kpis`): monthly counts and rates by acquisition channel, tier
and RFM segment, acquisition-cohort tables and a self-contained HTML report (docs/kpis.md).

`definitions` holds the windows and months, `inputs` reads members and orders from DuckDB views
into arrays, `states` and `tables` compute from those arrays (pure, no clock), `report` draws
the text headline and the HTML, `job` reads the lake and writes the files.
"""
