/*
 * report.h - the figures of one run of the main bench (bench.c) and how they
 * are printed: a table, or one JSON document.
 */
#ifndef RC_BENCH_REPORT_H
#define RC_BENCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>

/* One measured (workload, threads) pair. */
typedef struct bench_figure {
    const char *name;   /* shown in the table */
    const char *key;    /* JSON name */
    int threads;        /* threads at once */
    double ops_per_sec; /* median over the repetitions, all threads */
    double us_per_op;   /* latency seen by one thread */
} bench_figure;

/* A target: a figure of the run compared with a bound. */
typedef struct bench_target {
    const char *name;  /* what is compared */
    double value;      /* measured */
    double limit;      /* the bound */
    bool at_least;     /* value must be >= limit (else <=) */
    const char *unit;  /* "x" or "us" */
} bench_target;

/* What the report shows besides the figures. */
typedef struct bench_run {
    const char *machine; /* "2 CPUs online, redis-server 7.0.15, ..." */
    int reps;            /* repetitions per figure */
    double rtt;          /* a raw GET, us */
} bench_run;

/* Prints the figures and the targets (met / NOT MET) as a table. */
void bench_report_table(const bench_run *run, const bench_figure *f, size_t n,
                        const bench_target *tg, size_t ntg);
/* Prints them as one JSON document. 0, or -1 when out of memory. */
int bench_report_json(const bench_run *run, const bench_figure *f, size_t n,
                      const bench_target *tg, size_t ntg);

#endif
