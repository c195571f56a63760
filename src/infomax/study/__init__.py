"""Studies: several training variants on the same data and budget, compared on one table."""
