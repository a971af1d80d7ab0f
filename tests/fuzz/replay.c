/*
 * replay.c - main of a fuzz target built without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named on the command line, or
 * in a directory named there (the seed corpus), so that the normal build
 * checks every seed against the target's oracle as a CTest test.
 *
 *   fuzz_entity tests/fuzz/corpus/entity [more files or directories]
 *
 * Exits 0 after replaying at least one input; an oracle failure aborts.
 */
#include "fuzz.h"

#include <dirent.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

/* Runs the target on the file at path; false when it cannot be read. */
static bool replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, got;
    if (!f)
        return false;
    do {
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap ? cap * 2 : 4096);
            FUZZ_CHECK(nb != NULL, "out of memory reading %s", path);
            buf = nb;
            cap = cap ? cap * 2 : 4096;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return true;
}

/* Replays path (a file, or every file of a directory); returns how many. */
static int replay_path(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "replay: %s: cannot stat\n", path);
        return -1;
    }
    if (!S_ISDIR(sb.st_mode))
        return replay_file(path) ? 1 : -1;
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort), done = 0;
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(file, &sb) == 0 &&
            S_ISREG(sb.st_mode)) {
            if (!replay_file(file))
                done = -1;
            else if (done >= 0)
                done++;
        }
        free(names[i]);
    }
    free(names);
    return done;
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        int n = replay_path(argv[i]);
        if (n < 0) {
            fprintf(stderr, "replay: %s: unreadable\n", argv[i]);
            return 1;
        }
        total += n;
    }
    printf("replay: %d input(s), every oracle held\n", total);
    return total > 0 ? 0 : 1;
}
