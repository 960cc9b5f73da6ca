# Shopfront's pytest kit: a database per test, a plugin host, a storefront client, and the
# contract checks for strategies.
pytest_plugins = ["shopfront.testing"]
