"""Self-hosted call-tracking appliance: the controller that drives a local Asterisk."""

__version__ = "0.1.0"
