"""The read side of soh-es: read models rebuilt from the event log."""
