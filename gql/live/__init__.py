"""Live updates: GraphQL subscriptions fed by the committed audit trail."""
