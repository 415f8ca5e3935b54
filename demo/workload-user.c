/*
 * demo/workload.h as a static Linux program, for the benchmark row that compares machine mode
 * with user mode (bench/svm.ts): the same warm-up and the same timed laps of rounds as the
 * hypervisor's `bench=workload`, between the same "svmjit-bench:" lines, so the harness times it
 * the same way under `svmjit run` (and natively, where its result is the reference checksum).
 *
 * usage: workload-user ROUNDS [LAPS]     (LAPS laps of ROUNDS rounds; default 1 lap)
 */
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

static uint8_t scratch[WORKLOAD_LIMIT];

int main(int argc, char **argv)
{
	long n = argc >= 2 ? atol(argv[1]) : 0, laps = argc == 3 ? atol(argv[2]) : 1;
	if (argc > 3 || n <= 0 || laps <= 0) {
		fprintf(stderr, "usage: %s ROUNDS [LAPS] (positive counts)\n", argv[0]);
		return 2;
	}
	workload(scratch, (uint32_t)bench_warmup((uint64_t)n));
	for (long lap = 0; lap < laps; lap++) {
		/* Each line must reach the harness when it is printed, not when the program ends. */
		printf("svmjit-bench: begin user n=%ld\n", n);
		fflush(stdout);
		uint64_t result = workload(scratch, (uint32_t)n);
		printf("svmjit-bench: end user n=%ld result=0x%llx\n", n, (unsigned long long)result);
		fflush(stdout);
	}
	return 0;
}
