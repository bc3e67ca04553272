"""HTTP edge only: parse, authenticate, call the core, map errors. No engine logic here."""
