"""Pipeline assembly: config, the one pipeline factory, and the pieces runners share."""
