"""Thin front ends over client_lib: the `accord` command line (and later a web client)."""
