"""The evidence store: every check and event of every deployment, in SQLite or PostgreSQL
(docs/REPORTS.md). Activities hand records to the recorder, which never blocks them."""
