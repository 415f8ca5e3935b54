/*
 * The CPU-bound work of the demo hypervisor's L2 guest and of the SVM benchmarks: the primes
 * below a limit by the sieve of Eratosthenes, folded into an FNV-1a checksum. Plain integer C —
 * byte stores and loads, multiplies, well- and badly-predicted branches — with no I/O, no libc
 * and no system instruction, so the same function runs in an L2 guest, in L1 at ring 0 and as an
 * ordinary user-mode program, and a comparison of the three measures only where it runs.
 *
 * Included by demo/hypervisor.c (L1 and L2) and demo/workload-user.c (user mode); bench/svm.ts
 * builds the latter with the code-generation flags of test/baremetal's Makefile so the loops
 * compile alike.
 */
#ifndef DEMO_WORKLOAD_H
#define DEMO_WORKLOAD_H

#include <stdint.h>

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

/* The sieve size of one benchmark round: 128 KiB of scratch, about 1.5 million instructions. */
#define WORKLOAD_LIMIT (1u << 17)

struct primes {
	uint32_t count, largest;
	uint64_t checksum;
};

static inline uint64_t fnv_mix(uint64_t h, uint64_t value)
{
	for (int i = 0; i < 8; i++)
		h = (h ^ ((value >> (8 * i)) & 0xff)) * FNV_PRIME;
	return h;
}

/* The primes below `limit`; `composite` is scratch of at least `limit` bytes. */
static inline struct primes sieve(uint8_t *composite, uint32_t limit, uint64_t seed)
{
	struct primes r = { 0, 0, seed };
	for (uint32_t n = 0; n < limit; n++)
		composite[n] = 0;
	for (uint32_t n = 2; n < limit; n++) {
		if (composite[n])
			continue;
		r.count++;
		r.largest = n;
		r.checksum = (r.checksum ^ n) * FNV_PRIME;
		for (uint64_t m = (uint64_t)n * n; m < limit; m += n)
			composite[m] = 1;
	}
	r.checksum = fnv_mix(r.checksum, r.count);
	return r;
}

/*
 * The benchmarks' unit of work: `rounds` sieves of WORKLOAD_LIMIT, each seeded with the
 * checksum of the one before, so no round can be skipped or hoisted and the result proves
 * every round ran.
 *
 * Never inlined: every caller (L1, L2, user mode) then runs one copy of the same machine code,
 * not copies the compiler merged into different loop nests and scheduled apart.
 */
static __attribute__((noinline, unused)) uint64_t workload(uint8_t *scratch, uint32_t rounds)
{
	uint64_t h = FNV_OFFSET;
	for (uint32_t i = 0; i < rounds; i++)
		h = sieve(scratch, WORKLOAD_LIMIT, h).checksum;
	return h;
}

/*
 * What a benchmark runs before its timed part, for n units of timed work: a tenth more, so the
 * JIT has compiled the hot code and V8 optimised it before the clock starts.
 */
static inline uint64_t bench_warmup(uint64_t n)
{
	return n / 10 + 1;
}

#endif
