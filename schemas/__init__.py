"""Canonical event models: the contract with everything downstream of the hub.

This package imports pydantic only, nothing of ours. `schemas.catalogue` holds the
discriminated union over every event type and the parse/dump entry points.
"""
