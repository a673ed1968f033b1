"""The HTTP routes, one router per concern: meta (page, health, info), search, items, map."""
