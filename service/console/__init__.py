"""The merchant console: a small single-page app served by the service at ``/console``.

It is static HTML, CSS and JavaScript shipped inside the package (no CDN, no build step) and
talks only to the service's own GraphQL endpoint with the merchant key the user typed in, so
it can show nothing the API would not answer and adds no endpoint of its own.
"""

from .routes import console_routes

__all__ = ["console_routes"]
