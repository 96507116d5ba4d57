"""Offline attribution priors: LIME, CAP and IG, fusion, and the prior cache."""
