"""Accord's benchmarks (issue 7): ``python -m bench`` runs them and writes
docs/BENCHMARKS.md. They are not tests: every figure is a ratio against a limit
measured in the same run, and nothing asserts a time.

One module per benchmark (``replay``, ``ingest``, ``fanout``, ``sizes``,
``initial_sync``, ``scaleout``, ``relay_profile``), on shared parts: ``history``
(a couple's history of real records), ``feeds`` (signed entries for the relay),
``relays`` (relay processes and fresh databases on loopback), ``machine``,
``profiling``, ``sweep``, and ``report`` / ``report_sections`` for the document.
"""
