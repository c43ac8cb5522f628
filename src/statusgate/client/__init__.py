"""The command line's side of a running gateway: tail, deliveries, simulate."""
