/*
 * report.c - prints the figures and targets of the main bench (report.h).
 */
#include "report.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static bool met(const bench_target *t)
{
    return t->at_least ? t->value >= t->limit : t->value <= t->limit;
}

void bench_report_table(const bench_run *run, const bench_figure *f, size_t n,
                        const bench_target *tg, size_t ntg)
{
    printf("%s\n\n", run->machine);
    printf("%-44s %7s %12s %10s\n", "workload", "threads", "ops/s", "us/op");
    for (size_t i = 0; i < n; i++)
        printf("%-44s %7d %12.0f %10.1f\n", f[i].name, f[i].threads,
               f[i].ops_per_sec, f[i].us_per_op);
    printf("(median of %d repetitions; us/op is the latency one thread "
           "sees; round trip = raw GET = %.1f us)\n\n",
           run->reps, run->rtt);
    printf("%-58s %10s %10s  %s\n", "target", "measured", "bound", "");
    for (size_t i = 0; i < ntg; i++)
        printf("%-58s %9.2f%s %9.2f%s  %s\n", tg[i].name, tg[i].value,
               tg[i].unit, tg[i].limit, tg[i].unit,
               met(&tg[i]) ? "met" : "NOT MET");
}

int bench_report_json(const bench_run *run, const bench_figure *f, size_t n,
                      const bench_target *tg, size_t ntg)
{
    json_t *root = json_object(), *res = json_array(), *tgs = json_array();
    char *text;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            res, json_pack("{s:s, s:s, s:i, s:f, s:f}", "workload", f[i].key,
                           "name", f[i].name, "threads", f[i].threads,
                           "ops_per_sec", f[i].ops_per_sec, "us_per_op",
                           f[i].us_per_op));
    for (size_t i = 0; i < ntg; i++)
        json_array_append_new(
            tgs, json_pack("{s:s, s:f, s:f, s:s, s:b}", "target", tg[i].name,
                           "measured", tg[i].value, "bound", tg[i].limit,
                           "unit", tg[i].unit, "met", met(&tg[i])));
    json_object_set_new(root, "machine", json_string(run->machine));
    json_object_set_new(root, "repetitions", json_integer(run->reps));
    json_object_set_new(root, "round_trip_us", json_real(run->rtt));
    json_object_set_new(root, "results", res);
    json_object_set_new(root, "targets", tgs);
    text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!text)
        return -1;
    printf("%s\n", text);
    free(text);
    return 0;
}
