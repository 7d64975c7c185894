"""Running documents: parse and validation caches, document and cost limits, the lean
execution path, and the error policy. Nothing here knows a particular type."""
