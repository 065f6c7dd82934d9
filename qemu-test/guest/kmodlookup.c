// SPDX-License-Identifier: GPL-2.0
/*
 * libkmod's lookup of every modalias of a file, as udevd's `kmod load`
 * builtin makes it (kmod_module_new_from_lookup, then the blacklist filter
 * of modprobe -b), timed over RUNS passes of the whole list, against the
 * index files of MODDIR and the modprobe.d files of CONFDIR:
 *
 *   kmodlookup MODDIR CONFDIR MODALIASES RUNS [--show]
 *
 * Prints the median pass and, with --show, each modalias and the modules it
 * names (for the comparison with parmod's lookup: examples/aliasbench.rs).
 */
#include <libkmod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ALIASES 4096

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The modules ALIAS names, blacklisted ones left out; prints them with show. */
static int lookup(struct kmod_ctx *ctx, const char *alias, int show)
{
	struct kmod_list *list = NULL, *filtered = NULL, *l;
	int n = 0;

	if (kmod_module_new_from_lookup(ctx, alias, &list) < 0)
		return 0;
	if (kmod_module_apply_filter(ctx, KMOD_FILTER_BLACKLIST, list, &filtered) < 0)
		filtered = NULL;
	if (show)
		printf("%s ->", alias);
	kmod_list_foreach(l, filtered) {
		struct kmod_module *m = kmod_module_get_module(l);

		if (show)
			printf(" %s", kmod_module_get_name(m));
		kmod_module_unref(m);
		n++;
	}
	if (show)
		printf("\n");
	kmod_module_unref_list(filtered);
	kmod_module_unref_list(list);
	return n;
}

int main(int argc, char **argv)
{
	static char *aliases[MAX_ALIASES];
	static char line[8192];
	const char *config[2];
	struct kmod_ctx *ctx;
	double *times;
	int runs, count = 0, named = 0, r, i;
	FILE *f;

	if (argc < 5 || (runs = atoi(argv[4])) <= 0) {
		fprintf(stderr, "usage: kmodlookup MODDIR CONFDIR MODALIASES RUNS [--show]\n");
		return 2;
	}
	f = fopen(argv[3], "r");
	if (!f) {
		perror(argv[3]);
		return 1;
	}
	while (count < MAX_ALIASES && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (line[0])
			aliases[count++] = strdup(line);
	}
	fclose(f);
	config[0] = argv[2];
	config[1] = NULL;
	ctx = kmod_new(argv[1], config);
	if (!ctx || kmod_load_resources(ctx) < 0) {
		fprintf(stderr, "kmodlookup: cannot load the index files of %s\n", argv[1]);
		return 1;
	}
	for (i = 0; i < count; i++)
		named += lookup(ctx, aliases[i], argc > 5 && strcmp(argv[5], "--show") == 0);
	times = calloc(runs, sizeof(*times));
	for (r = 0; r < runs; r++) {
		double t = now_ms();

		for (i = 0; i < count; i++)
			lookup(ctx, aliases[i], 0);
		times[r] = now_ms() - t;
	}
	qsort(times, runs, sizeof(*times), cmp);
	printf("%d modaliases, %d module names: median %.3f ms per pass (%.1f us per modalias), %d runs, min %.3f max %.3f\n",
	       count, named, times[runs / 2], times[runs / 2] * 1e3 / (count ? count : 1), runs, times[0], times[runs - 1]);
	kmod_unref(ctx);
	return 0;
}
