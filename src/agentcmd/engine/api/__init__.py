"""HTTP edge only: parse, authenticate, call the command facade (``engine.commands``), map errors."""
