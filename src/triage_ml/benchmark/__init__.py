"""Quality benchmarks on public data, run with the same training code as the product."""
