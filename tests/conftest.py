"""The plugin's own tests run pytest inside pytest (pytester)."""

pytest_plugins = ["pytester"]
