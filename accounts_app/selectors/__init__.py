"""Reads: the queries the views, the context processor and the forms share
(requests.py, instances.py, audit.py). Writes are in accounts_app.services."""
