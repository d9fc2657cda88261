"""Conversions: rules that turn calls and leads into conversions, and the outbox that takes
them (and other events) to webhooks and ad platforms."""
