// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * The cost of parmod's stuck-load signal: clock_gettime() on another
 * task's CPU clock, MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED) as
 * src/runtime/arch task_cpu_ns() reads it for a worker (a process of its
 * own). Measured for a child that sleeps, a child that spins, and, for
 * comparison, the caller's own thread clock and CLOCK_MONOTONIC.
 * Prints one "cpuclock WHAT NS_PER_CALL" line each.
 *
 *   cpuclock [CALLS]      (default 200000)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CPUCLOCK_SCHED 2
#define CPUCLOCK_PERTHREAD 4
#define PROCESS_CPUCLOCK(pid, clock) ((clockid_t)((~(unsigned)(pid) << 3) | (clock)))

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void measure(const char *what, clockid_t id, long calls)
{
	struct timespec ts;
	double t0 = now_ns();

	for (long i = 0; i < calls; i++) {
		if (clock_gettime(id, &ts) != 0) {
			printf("cpuclock %s failed\n", what);
			return;
		}
	}
	printf("cpuclock %s %.0f\n", what, (now_ns() - t0) / calls);
}

static pid_t child(int spin)
{
	pid_t p = fork();

	if (p == 0) {
		if (spin)
			for (volatile unsigned long x = 0;; x++)
				;
		for (;;)
			pause();
	}
	return p;
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 200000;
	pid_t sleeper = child(0), spinner = child(1);

	usleep(100000);
	measure("other-process-sleeping", PROCESS_CPUCLOCK(sleeper, CPUCLOCK_SCHED), calls);
	measure("other-process-running", PROCESS_CPUCLOCK(spinner, CPUCLOCK_SCHED), calls);
	measure("own-thread", PROCESS_CPUCLOCK(0, CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD), calls);
	measure("monotonic", CLOCK_MONOTONIC, calls);
	kill(sleeper, SIGKILL);
	kill(spinner, SIGKILL);
	while (wait(NULL) > 0)
		;
	return 0;
}
