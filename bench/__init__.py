"""`make bench`: the load-test scripts, and a Django app (endpoints, the pgbench command)
installed only with BENCH_ENDPOINTS on. Nothing outside bench/ imports it."""
