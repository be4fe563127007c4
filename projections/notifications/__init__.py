"""Read model `notifications`: rule-driven notifications, their recipients, read receipts and escalation."""
