"""The pieces of `make bench`: processes and databases, seeding, load generation, report."""
