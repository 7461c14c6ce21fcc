"""Parts of benchmarks/moments.py: the simulated shop, and sending by SMTP."""
