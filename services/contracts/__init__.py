"""Wire schemas only: the event envelope, the catalogue, and one module per producer."""
