pytest_plugins = ["shopfront.testing", "tests.demo_service"]
