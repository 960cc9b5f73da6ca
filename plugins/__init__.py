"""Shopfront's built-in plugins, written against exactly the hooks a merchant uses."""
