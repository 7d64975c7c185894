"""The rules of the domain: what may be written, by whom, and how values must look.

One module per aggregate. Each command takes a unit of work and its actor, checks the
rules, writes through repositories and raises the domain errors of
``persistence.errors``. The GraphQL API and the command line call the same commands,
so they apply the same rules with the same messages. Nothing here knows GraphQL or HTTP.
"""
