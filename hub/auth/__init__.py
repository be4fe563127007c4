"""Who is calling and what they may do: roles, department scope, API keys hashed at rest."""
