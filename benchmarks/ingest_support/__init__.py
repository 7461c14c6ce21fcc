"""Parts of benchmarks/ingest_http.py: workload, server, load generators, databases."""
