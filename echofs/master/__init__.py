"""The master role: REST API, pipelines, membership and background daemons."""
