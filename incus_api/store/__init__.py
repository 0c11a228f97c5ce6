"""SQLite: the connection and transactions (``db``), numbered migrations, and one module per table
or group of tables. The only place with SQL."""
