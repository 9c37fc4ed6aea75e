"""Real components the end-to-end tests run: a PostgreSQL cluster and
CubicWeb instance processes serving HTTP on 127.0.0.1."""
