"""Knowledge: the source notices and the parser that turns a notice into its structure."""
