"""The public HTTP entry: JWT verification, validation, limits, RPC to the services."""
