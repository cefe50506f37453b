"""Accord client library: what every Python front end uses (see client_lib/account.py)."""
