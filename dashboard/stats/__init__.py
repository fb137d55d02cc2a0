"""Statistics core: group models, cluster tables, RFT p-values, eigenvariates, robust regression."""
