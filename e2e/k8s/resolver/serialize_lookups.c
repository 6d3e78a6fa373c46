/* Serializes name lookups in a process that resolves through nss_wrapper.
 *
 * nss_wrapper (Debian 1.1.12) re-reads its hosts file when the file changes, and two threads
 * looking names up during a re-read can crash the process (seen: SIGSEGV in fclose(NULL)
 * under getaddrinfo from librdkafka's broker threads while the kubelet stand-in rewrote the
 * hosts file). Preloaded before libnss_wrapper.so, these wrappers take one lock around every
 * lookup and call the next definition (nss_wrapper's).
 *
 *   LD_PRELOAD="serialize_lookups.so libnss_wrapper.so"
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/socket.h>

static pthread_mutex_t lookups = PTHREAD_MUTEX_INITIALIZER;

#define NEXT(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    static __typeof__(&getaddrinfo) next;
    pthread_mutex_lock(&lookups);
    if (!next) next = NEXT(getaddrinfo);
    int rc = next(node, service, hints, res);
    pthread_mutex_unlock(&lookups);
    return rc;
}

int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen,
                char *serv, socklen_t servlen, int flags) {
    static __typeof__(&getnameinfo) next;
    pthread_mutex_lock(&lookups);
    if (!next) next = NEXT(getnameinfo);
    int rc = next(sa, salen, host, hostlen, serv, servlen, flags);
    pthread_mutex_unlock(&lookups);
    return rc;
}

int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
                    struct hostent **result, int *h_errnop) {
    static __typeof__(&gethostbyname_r) next;
    pthread_mutex_lock(&lookups);
    if (!next) next = NEXT(gethostbyname_r);
    int rc = next(name, ret, buf, buflen, result, h_errnop);
    pthread_mutex_unlock(&lookups);
    return rc;
}

int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf, size_t buflen,
                     struct hostent **result, int *h_errnop) {
    static __typeof__(&gethostbyname2_r) next;
    pthread_mutex_lock(&lookups);
    if (!next) next = NEXT(gethostbyname2_r);
    int rc = next(name, af, ret, buf, buflen, result, h_errnop);
    pthread_mutex_unlock(&lookups);
    return rc;
}
