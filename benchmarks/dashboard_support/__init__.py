"""The parts of `benchmarks/dashboard.py`: the shops it measures (the demo shop and a big shop simulated by
resampling the demo's real customers, both built once and kept), and the live dashboard it times."""
