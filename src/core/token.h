/*
 * token.h - random 128-bit tokens as 32 lowercase hex digits: lease tokens
 * and entity ids.
 *
 * One failure policy: a token is always produced. Each thread keeps a
 * xoshiro256** generator seeded once from getrandom(2) (so the common call
 * makes no system call); should getrandom fail, the seed mixes the clocks,
 * the pid, the thread and a process-wide counter instead. A child process
 * reseeds after fork (pthread_atfork), so parent and child never share a
 * sequence. Tokens are unique, not secret: nothing here is for cryptography.
 */
#ifndef RC_CORE_TOKEN_H
#define RC_CORE_TOKEN_H

#define RC_TOKEN_LEN 32

/* Writes RC_TOKEN_LEN hex digits and a NUL into out. Thread-safe. */
void rc_token_hex(char out[RC_TOKEN_LEN + 1]);

#endif
