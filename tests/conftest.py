pytest_plugins = ["shopfront.testing"]
