"""The HTTP service: the ASGI application, its middleware (turns, request ids, body
limit, masking, metrics), authentication, rate limits, readiness and the playground."""
