pytest_plugins = ["service.testing", "tests.demo_service"]
