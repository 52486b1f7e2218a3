"""What steers proposals: roles and their router, in-run rules, and the memory carried across runs."""
