"""The HTTP side: admin UI and API (aiohttp)."""
