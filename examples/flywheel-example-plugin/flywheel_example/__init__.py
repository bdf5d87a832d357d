"""An example Flywheel plugin: notes per tenant."""

__version__ = "0.1.0"
