/*
 * resolve.h - name resolution with a bound. getaddrinfo cannot be given a
 * timeout (a resolver that never answers holds it for as long as
 * resolv.conf's timeout x attempts, 10 s by default), so a name that is not a
 * numeric address is resolved on a short-lived thread of its own and waited
 * for until a deadline; past it the caller goes on with a timeout and the
 * thread frees its own result whenever getaddrinfo returns.
 */
#ifndef RC_CACHE_RESOLVE_H
#define RC_CACHE_RESOLVE_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>

/* *out = the TCP addresses of host:port (freeaddrinfo), resolved before
 * deadline_ns (monotonic). RC_OK; RC_EUNAVAILABLE with why ("timed out",
 * gai_strerror's text); RC_ENOMEM. */
int rc_resolve(const char *host, int port, int64_t deadline_ns, struct addrinfo **out,
               char *why, size_t why_size);

#endif
