# Benchmarks (issue 6): throwaway PostgreSQL + Redis, N daphne instances, worker and beat.
# `make bench` runs every scenario at full size (~15 min); QUICK=1 for small counts.
PYTHON ?= .venv/bin/python
BENCH_ARGS ?= $(if $(QUICK),--quick,)
SCENARIOS := hot many fanout idle churn closing reconnect

.PHONY: bench $(addprefix bench-,$(SCENARIOS))

bench:
	$(PYTHON) -m bench all $(BENCH_ARGS)

$(addprefix bench-,$(SCENARIOS)): bench-%:
	$(PYTHON) -m bench $* $(BENCH_ARGS)
