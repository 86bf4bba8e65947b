"""Shared test helpers: the log sink, known fixture secrets, and builders for the core."""
