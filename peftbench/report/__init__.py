"""Reports: the survey tables rebuilt from run records, published numbers beside ours. Pure functions
of the records (and the reference tables): the same records give the same report."""
