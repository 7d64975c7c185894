"""The GraphQL service, in four parts: ``schema`` (the GraphQL types, resolvers and
loaders over the domain), ``engine`` (how a document is limited, executed and its errors
presented), ``http`` (the ASGI application and its middleware) and ``cli`` (the
``auditql`` command and the server process). ``settings`` and ``errors`` are shared."""
