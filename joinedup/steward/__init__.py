"""What the data stewards see: match reports, the review queue and (later) the workbench."""
