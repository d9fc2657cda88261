"""The call path: routing decisions, the inbound AGI handler and the call records."""
