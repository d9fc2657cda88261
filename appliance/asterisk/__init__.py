"""Adapters to Asterisk: config rendering, the AMI client and the FastAGI server."""
