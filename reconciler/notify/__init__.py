"""Job-state notifications: the Slack formatter (shipped to Lambda as it is) and its wiring."""
