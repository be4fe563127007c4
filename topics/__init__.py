"""Topic catalogue and naming. Imports schemas only; provisioning is done by a bus (hub.ports)."""
