"""The one error a bad setting raises, so every entry point can name the variable and stop."""


class ConfigError(ValueError):
    """A setting has a value the pipeline cannot use."""
