"""See the package docstring of glassjax for the data flow."""
