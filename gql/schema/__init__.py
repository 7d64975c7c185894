"""The GraphQL schema: types and resolvers, one module per aggregate each, the
per-request context and loaders, and ``build`` that puts them together."""
