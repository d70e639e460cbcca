"""Pure compliance rules, the attempt ledger interface and its SQLite and PostgreSQL implementations."""
