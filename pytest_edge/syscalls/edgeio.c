/*
 * edgeio: pytest-edge's system-call layer, an LD_PRELOAD interposition library.
 *
 * It records (tracing) and, when armed, fails (faults) the libc file calls of the process it
 * is loaded into: Python's own I/O, C extensions, SQLite's VFS, references bound at import and
 * handles opened before tracing or arming alike. It is driven from Python with ctypes
 * (pytest_edge/syscalls/trace.py and faults.py) and is inert until told to trace or fault:
 * every interposed function then costs one relaxed atomic load before calling the real one.
 *
 * Portable C for glibc on Linux (x86-64, aarch64): real functions come from
 * dlsym(RTLD_NEXT, ...), no assembly, no raw system calls. The library's own I/O goes through
 * the real functions and a thread-local guard, so it never records or faults itself.
 *
 * Trace records are JSON lines written with one write(2) each to the record fd (opened with
 * O_APPEND by the caller); their format is the crash harness's Python tracer's
 * (pytest_edge/crash/_child.py) plus "sys" (the libc function) and "n" (the traced call's
 * number in this process).
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef RWF_APPEND
#define RWF_APPEND 0x00000010
#endif
#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif
#ifndef RWF_SYNC
#define RWF_SYNC 0x00000004
#endif
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define EDGEIO_VERSION 1

/* ---------------------------------------------------------------------------------------- */
/* Real functions                                                                            */

#define REAL(name) real_##name
#define LOAD(name)                                                                         \
    do {                                                                                   \
        if (UNLIKELY(!real_##name))                                                        \
            real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name);               \
    } while (0)
/* A real function libc does not have (pwritev2 on an old glibc): fail the call with ENOSYS. */
#define NEED(name, fail)                                                                   \
    do {                                                                                   \
        LOAD(name);                                                                        \
        if (UNLIKELY(!real_##name)) {                                                      \
            errno = ENOSYS;                                                                \
            return fail;                                                                   \
        }                                                                                  \
    } while (0)

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real___open_2)(const char *, int);
static int (*real___open64_2)(const char *, int);
static int (*real___openat_2)(int, const char *, int);
static int (*real___openat64_2)(int, const char *, int);
static int (*real_creat)(const char *, mode_t);
static int (*real_creat64)(const char *, mode_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off64_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static ssize_t (*real_pwritev64v2)(int, const struct iovec *, int, off64_t, int);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static ssize_t (*real_pread64)(int, void *, size_t, off64_t);
static ssize_t (*real___read_chk)(int, void *, size_t, size_t);
static ssize_t (*real___pread_chk)(int, void *, size_t, off_t, size_t);
static ssize_t (*real___pread64_chk)(int, void *, size_t, off64_t, size_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_truncate)(const char *, off_t);
static int (*real_truncate64)(const char *, off64_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_fallocate64)(int, int, off64_t, off64_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_posix_fallocate64)(int, off64_t, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_sync_file_range)(int, off64_t, off64_t, unsigned int);
static int (*real_syncfs)(int);
static void (*real_sync)(void);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_link)(const char *, const char *);
static int (*real_linkat)(int, const char *, int, const char *, int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_mkdirat)(int, const char *, mode_t);
static int (*real_rmdir)(const char *);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_fcntl)(int, int, ...);
static int (*real_fcntl64)(int, int, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off64_t);
static ssize_t (*real_copy_file_range)(int, off64_t *, int, off64_t *, size_t, unsigned int);
static ssize_t (*real_sendfile)(int, int, off_t *, size_t);
static ssize_t (*real_sendfile64)(int, int, off64_t *, size_t);
static FILE *(*real_fopen)(const char *, const char *);
static FILE *(*real_fopen64)(const char *, const char *);
static FILE *(*real_fdopen)(int, const char *);
static FILE *(*real_freopen)(const char *, const char *, FILE *);
static FILE *(*real_freopen64)(const char *, const char *, FILE *);

/* ---------------------------------------------------------------------------------------- */
/* State                                                                                     */

#define ON_TRACE 1
#define ON_FAULTS 2
/* Bit set of what is switched on; zero means inert (the fast path reads only this). */
static int g_on;
/* The library's own work is never traced or faulted (realpath, the record writes, ...). */
static __thread int t_guard __attribute__((tls_model("initial-exec")));
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

#define INERT() (LIKELY(__atomic_load_n(&g_on, __ATOMIC_RELAXED) == 0) || t_guard)
#define TRACING() (__atomic_load_n(&g_on, __ATOMIC_RELAXED) & ON_TRACE)
#define FAULTING() (__atomic_load_n(&g_on, __ATOMIC_RELAXED) & ON_FAULTS)

/* Tracing (under g_lock) */
static char g_root[PATH_MAX];
static size_t g_root_len;
static dev_t g_root_dev;
static int g_rec_fd = -1; /* the library's own duplicate of the caller's record fd */
static dev_t g_rec_dev;
static ino_t g_rec_ino;
static long g_calls;          /* traced calls numbered so far */
static char g_kill_call[32];  /* "" when no kill point */
static long g_kill_n;
static long g_kill_seen;

/* The fd table: which file each fd names (absolute path), validated by device and inode. */
struct fdent {
    int known;
    dev_t dev;
    ino_t ino;
    char *path; /* malloc'd, reused; absolute path, "" when the fd has no path */
    size_t cap;
};
static struct fdent *g_fds;
static int g_nfds;

/* Faults (under g_lock) */
enum { K_DISK_FULL = 1, K_IO_ERROR, K_READ_ONLY, K_SLOW_IO };
enum { OP_WRITE = 1, OP_FSYNC = 2, OP_RENAME = 4, OP_OPEN = 8, OP_READ = 16 };
#define MAX_FAULTS 32
struct fault {
    int used;
    int kind;
    int on;
    char prefix[PATH_MAX];
    size_t plen;
    long first, every, times; /* times < 0: no limit */
    double probability;       /* < 0: always */
    uint64_t rng;
    int short_write;
    int err;
    long long free_bytes;
    double seconds;
    double w0, w1; /* window; w1 <= w0: none */
    struct timespec armed;
    long calls, fired;
};
static struct fault g_faults[MAX_FAULTS];
static int g_read_faults; /* armed faults that look at reads */

static void lock(void) { pthread_mutex_lock(&g_lock); }
static void unlock(void) { pthread_mutex_unlock(&g_lock); }

static void atfork_prepare(void) { pthread_mutex_lock(&g_lock); }
static void atfork_release(void) { pthread_mutex_unlock(&g_lock); }

__attribute__((constructor)) static void edgeio_init(void) {
    LOAD(open); LOAD(open64); LOAD(openat); LOAD(openat64); LOAD(__open_2); LOAD(__open64_2);
    LOAD(__openat_2); LOAD(__openat64_2); LOAD(creat); LOAD(creat64); LOAD(write);
    LOAD(pwrite); LOAD(pwrite64); LOAD(writev); LOAD(pwritev); LOAD(pwritev64);
    LOAD(pwritev2); LOAD(pwritev64v2); LOAD(read); LOAD(pread); LOAD(pread64);
    LOAD(__read_chk); LOAD(__pread_chk); LOAD(__pread64_chk);
    LOAD(ftruncate); LOAD(ftruncate64); LOAD(truncate); LOAD(truncate64); LOAD(fallocate);
    LOAD(fallocate64); LOAD(posix_fallocate); LOAD(posix_fallocate64); LOAD(fsync);
    LOAD(fdatasync); LOAD(sync_file_range); LOAD(syncfs); LOAD(sync); LOAD(rename);
    LOAD(renameat); LOAD(renameat2); LOAD(link); LOAD(linkat); LOAD(unlink); LOAD(unlinkat);
    LOAD(mkdir); LOAD(mkdirat); LOAD(rmdir); LOAD(close); LOAD(dup); LOAD(dup2); LOAD(dup3);
    LOAD(fcntl); LOAD(fcntl64); LOAD(mmap); LOAD(mmap64); LOAD(copy_file_range);
    LOAD(sendfile); LOAD(sendfile64); LOAD(fopen); LOAD(fopen64); LOAD(fdopen);
    LOAD(freopen); LOAD(freopen64);
    pthread_atfork(atfork_prepare, atfork_release, atfork_release);
}

/* errno and the guard around the library's own work in a hook. */
struct scope {
    int saved_errno;
};
static void enter(struct scope *s) {
    s->saved_errno = errno;
    t_guard++;
}
static void leave(struct scope *s, int err) {
    t_guard--;
    errno = err;
    (void)s;
}

/* ---------------------------------------------------------------------------------------- */
/* Paths                                                                                     */

/* Lexically normalise an absolute path (collapse "//", "." and ".."), as os.path.normpath. */
static int normalize(const char *in, char *out, size_t size) {
    size_t len = 0;
    const char *p = in;
    if (size < 2) return -1;
    out[len++] = '/';
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 1 && p[0] == '.') {
            /* skip */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (len > 1) {
                len--;
                while (len > 1 && out[len - 1] != '/') len--;
                if (len > 1) len--; /* the slash before the removed component */
            }
        } else {
            if (len > 1) {
                if (len + 1 >= size) return -1;
                out[len++] = '/';
            }
            if (len + n >= size) return -1;
            memcpy(out + len, p, n);
            len += n;
        }
        p += n;
    }
    out[len] = '\0';
    return 0;
}

static void fd_store(int fd, const char *path, const struct stat *st);
static void write_all(int fd, const char *p, size_t n);

/* The absolute path an fd names (from the table, else /proc/self/fd), "" when it has none.
 * Fills *st with the fd's fstat. Returns -1 when the fd is not open. */
static int fd_info(int fd, struct stat *st, char *out, size_t size) {
    if (fd < 0 || fstat(fd, st) != 0) return -1;
    lock();
    if (fd < g_nfds && g_fds[fd].known && g_fds[fd].dev == st->st_dev &&
        g_fds[fd].ino == st->st_ino) {
        snprintf(out, size, "%s", g_fds[fd].path);
        unlock();
        return 0;
    }
    unlock();
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, size - 1);
    if (n < 0 || out[0] != '/') {
        out[0] = '\0';
    } else {
        out[n] = '\0';
        static const char deleted[] = " (deleted)";
        size_t dl = sizeof deleted - 1;
        if ((size_t)n > dl && strcmp(out + n - dl, deleted) == 0) out[n - dl] = '\0';
    }
    fd_store(fd, out, st);
    return 0;
}

/* Resolve (dirfd, path) like the Python tracer's rel(): realpath of the parent + basename. */
static int resolve(int dirfd, const char *path, char *out, size_t size) {
    char joined[PATH_MAX * 2];
    char norm[PATH_MAX];
    char parent[PATH_MAX];
    char real[PATH_MAX];
    if (!path || !*path) return -1;
    if (path[0] == '/') {
        if (snprintf(joined, sizeof joined, "%s", path) >= (int)sizeof joined) return -1;
    } else {
        char base[PATH_MAX];
        if (dirfd == AT_FDCWD) {
            if (!getcwd(base, sizeof base)) return -1;
        } else {
            struct stat st;
            if (fd_info(dirfd, &st, base, sizeof base) != 0 || !base[0]) return -1;
        }
        if (snprintf(joined, sizeof joined, "%s/%s", base, path) >= (int)sizeof joined)
            return -1;
    }
    if (normalize(joined, norm, sizeof norm) != 0) return -1;
    if (strcmp(norm, "/") == 0) {
        snprintf(out, size, "/");
        return 0;
    }
    char *slash = strrchr(norm, '/');
    const char *name = slash + 1;
    if (slash == norm) {
        snprintf(parent, sizeof parent, "/");
    } else {
        memcpy(parent, norm, (size_t)(slash - norm));
        parent[slash - norm] = '\0';
    }
    const char *dir = realpath(parent, real) ? real : parent;
    int w = strcmp(dir, "/") == 0 ? snprintf(out, size, "/%s", name)
                                   : snprintf(out, size, "%s/%s", dir, name);
    return w >= (int)size ? -1 : 0;
}

/* The path relative to `prefix` (".", "a/b"), or NULL when it lies outside. */
static const char *under(const char *abs, const char *prefix, size_t plen) {
    if (!abs || !abs[0] || !plen) return NULL;
    if (plen == 1 && prefix[0] == '/') return abs[1] ? abs + 1 : ".";
    if (strncmp(abs, prefix, plen) != 0) return NULL;
    if (abs[plen] == '\0') return ".";
    if (abs[plen] == '/') return abs + plen + 1;
    return NULL;
}

/* The path relative to the traced root, or NULL (also when not tracing). */
static const char *rel_of(const char *abs) {
    if (!TRACING()) return NULL;
    return under(abs, g_root, g_root_len);
}

/* ---------------------------------------------------------------------------------------- */
/* The fd table                                                                              */

/* Descriptors above this are resolved afresh each time rather than kept in the table. */
#define FD_TABLE_MAX (1 << 20)

static void fd_store(int fd, const char *path, const struct stat *st) {
    if (fd < 0 || fd >= FD_TABLE_MAX) return;
    lock();
    if (fd >= g_nfds) {
        int n = g_nfds ? g_nfds : 64;
        while (n <= fd) n *= 2;
        struct fdent *grown = realloc(g_fds, (size_t)n * sizeof *grown);
        if (!grown) {
            unlock();
            return;
        }
        memset(grown + g_nfds, 0, (size_t)(n - g_nfds) * sizeof *grown);
        g_fds = grown;
        g_nfds = n;
    }
    struct fdent *e = &g_fds[fd];
    size_t need = strlen(path) + 1;
    if (need > e->cap) {
        char *p = realloc(e->path, need);
        if (!p) {
            e->known = 0;
            unlock();
            return;
        }
        e->path = p;
        e->cap = need;
    }
    memcpy(e->path, path, need);
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->known = 1;
    unlock();
}

static void fd_forget(int fd) {
    lock();
    if (fd >= 0 && fd < g_nfds) g_fds[fd].known = 0;
    unlock();
}

/* newfd now names what oldfd names. */
static void fd_copy(int oldfd, int newfd) {
    struct stat st;
    char path[PATH_MAX];
    if (newfd == oldfd) return;
    fd_forget(newfd);
    if (fd_info(oldfd, &st, path, sizeof path) == 0) fd_store(newfd, path, &st);
}

/* After a rename, fds opened under the old name carry the new one. */
static void fd_renamed(const char *src, const char *dst) {
    size_t sl = strlen(src);
    lock();
    for (int i = 0; i < g_nfds; i++) {
        struct fdent *e = &g_fds[i];
        if (!e->known || strncmp(e->path, src, sl) != 0) continue;
        if (e->path[sl] != '\0' && e->path[sl] != '/') continue;
        char moved[PATH_MAX];
        if (snprintf(moved, sizeof moved, "%s%s", dst, e->path + sl) >= (int)sizeof moved) {
            e->known = 0;
            continue;
        }
        size_t need = strlen(moved) + 1;
        if (need > e->cap) {
            char *p = realloc(e->path, need);
            if (!p) {
                e->known = 0;
                continue;
            }
            e->path = p;
            e->cap = need;
        }
        memcpy(e->path, moved, need);
    }
    unlock();
}

static void fd_clear_all(void) {
    for (int i = 0; i < g_nfds; i++) g_fds[i].known = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Records                                                                                   */

struct buf {
    char *p;
    size_t len, cap;
    int heap, failed;
    char inl[1024];
};

static void b_init(struct buf *b) {
    b->p = b->inl;
    b->len = 0;
    b->cap = sizeof b->inl;
    b->heap = 0;
    b->failed = 0;
}

static void b_free(struct buf *b) {
    if (b->heap) free(b->p);
    b_init(b);
}

static int b_reserve(struct buf *b, size_t more) {
    if (b->failed) return -1;
    if (b->len + more <= b->cap) return 0;
    size_t cap = b->cap * 2;
    while (cap < b->len + more) cap *= 2;
    char *p = b->heap ? realloc(b->p, cap) : malloc(cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    if (!b->heap) memcpy(p, b->p, b->len);
    b->p = p;
    b->cap = cap;
    b->heap = 1;
    return 0;
}

static void b_raw(struct buf *b, const char *s, size_t n) {
    if (b_reserve(b, n) != 0) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void b_cstr(struct buf *b, const char *s) { b_raw(b, s, strlen(s)); }

/* The length of the valid UTF-8 sequence at s (1-4), or 0 when it is not valid. */
static int utf8_len(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
        if (c == 0xe0 && s[1] < 0xa0) return 0;
        if (c == 0xed && s[1] >= 0xa0) return 0; /* surrogates */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80) return 0;
        if (c == 0xf0 && s[1] < 0x90) return 0;
        if (c == 0xf4 && s[1] >= 0x90) return 0;
        return 4;
    }
    return 0;
}

/* A JSON string; bytes that are not UTF-8 become \udcXX, as Python's os.fsdecode gives them. */
static void b_jstr(struct buf *b, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    char esc[8];
    b_raw(b, "\"", 1);
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            b_raw(b, esc, 2);
            p++;
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            b_raw(b, esc, 6);
            p++;
        } else {
            int n = utf8_len(p);
            if (n == 0) {
                snprintf(esc, sizeof esc, "\\udc%02x", c);
                b_raw(b, esc, 6);
                p++;
            } else {
                b_raw(b, (const char *)p, (size_t)n);
                p += n;
            }
        }
    }
    b_raw(b, "\"", 1);
}

static void b_key(struct buf *b, const char *key) {
    b_raw(b, ",\"", 2);
    b_cstr(b, key);
    b_raw(b, "\":", 2);
}

static void b_str(struct buf *b, const char *key, const char *value) {
    b_key(b, key);
    b_jstr(b, value);
}

static void b_int(struct buf *b, const char *key, long long value) {
    char num[32];
    b_key(b, key);
    b_raw(b, num, (size_t)snprintf(num, sizeof num, "%lld", value));
}

static void b_begin(struct buf *b, const char *t) {
    b_init(b);
    b_cstr(b, "{\"t\":\"");
    b_cstr(b, t);
    b_raw(b, "\"", 1);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/* Two base64 characters for each 12-bit value: 3 bytes take two table loads. */
static char B64_PAIRS[4096][2];

__attribute__((constructor)) static void b64_init(void) {
    for (int i = 0; i < 4096; i++) {
        B64_PAIRS[i][0] = B64[i >> 6];
        B64_PAIRS[i][1] = B64[i & 63];
    }
}

static void b64_encode(char *restrict o, const unsigned char *restrict d, size_t n) {
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        memcpy(o, B64_PAIRS[v >> 12], 2);
        memcpy(o + 2, B64_PAIRS[v & 4095], 2);
        o += 4;
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        o[0] = B64[v >> 18];
        o[1] = B64[(v >> 12) & 63];
        o[2] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        o[3] = '=';
    }
}

static void b_base64(struct buf *b, const char *key, const unsigned char *d, size_t n) {
    size_t len = (n + 2) / 3 * 4;
    b_key(b, key);
    if (b_reserve(b, len + 2) != 0) return;
    b->p[b->len] = '"';
    if (n) b64_encode(b->p + b->len + 1, d, n);
    b->p[b->len + 1 + len] = '"';
    b->len += len + 2;
}

/* Write a record line; if the program closed the record fd behind the library's back (and
 * the number now names another file), stop recording rather than write into that file. */
static void write_record(const char *p, size_t n) {
    struct stat st;
    if (g_rec_fd < 0) return;
    if (fstat(g_rec_fd, &st) != 0 || st.st_dev != g_rec_dev || st.st_ino != g_rec_ino) {
        static const char msg[] =
            "pytest-edge: the system-call trace's record fd was closed by the program; "
            "tracing records stop here\n";
        real_write(2, msg, sizeof msg - 1);
        g_rec_fd = -1;
        return;
    }
    write_all(g_rec_fd, p, n);
}

static void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = real_write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Finish the record with "sys" and "n" and write it with one write(2). */
static void b_emit(struct buf *b, const char *sys, long n) {
    b_str(b, "sys", sys);
    b_int(b, "n", n);
    b_raw(b, "}\n", 2);
    if (b->failed) { /* out of memory: say what was lost rather than nothing */
        char line[256];
        int len = snprintf(line, sizeof line,
                           "{\"t\":\"unobserved\",\"path\":\"?\",\"ino\":0,\"why\":\"out of "
                           "memory while recording\",\"sys\":\"%s\",\"n\":%ld}\n",
                           sys, n);
        lock();
        write_record(line, (size_t)len);
        unlock();
    } else {
        lock();
        write_record(b->p, b->len);
        unlock();
    }
    b_free(b);
}

static int kill_matches(const char *t, const char *sys) {
    if (!g_kill_call[0]) return 0;
    return strcmp(g_kill_call, "any") == 0 || strcmp(g_kill_call, t) == 0 ||
           strcmp(g_kill_call, sys) == 0 ||
           (strcmp(g_kill_call, "fsync") == 0 && strcmp(t, "dirsync") == 0);
}

/* Number one traced call; at the kill point write the kill record and SIGKILL the group. */
static long number_call(const char *t, const char *sys, const char *rel) {
    lock();
    long n = ++g_calls;
    int die = kill_matches(t, sys) && ++g_kill_seen == g_kill_n;
    unlock();
    if (die) {
        struct buf b;
        char why[PATH_MAX + 128];
        snprintf(why, sizeof why, "syscall: before call %ld (%s of %s)", n, t, rel ? rel : "?");
        b_begin(&b, "kill");
        b_str(&b, "why", why);
        b_emit(&b, sys, n);
        kill(0, SIGKILL);
        for (;;) pause();
    }
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Faults                                                                                    */

static uint64_t splitmix(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double since(const struct timespec *t0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Count one call at a counted fault; 1 when the schedule picks it (pytest_edge.faults.schedule
 * rules: from `first`, every `every`, inside the window, the seeded draw, at most `times`). */
static int tick(struct fault *f) {
    long call = ++f->calls;
    if (call < f->first || (f->times >= 0 && f->fired >= f->times)) return 0;
    if (f->every > 0 && (call - f->first) % f->every != 0) return 0;
    if (f->w1 > f->w0) {
        double t = since(&f->armed);
        if (t < f->w0 || t >= f->w1) return 0;
    }
    if (f->probability >= 0) {
        double draw = (double)(splitmix(&f->rng) >> 11) / 9007199254740992.0;
        if (draw >= f->probability) return 0;
    }
    f->fired++;
    return 1;
}

static int in_scope(const struct fault *f, const char *abs) {
    return abs && under(abs, f->prefix, f->plen) != NULL;
}

/* The error (errno) the armed faults give this call, or 0; sleeps for slow_io. `mutating`:
 * the call changes the file system (read_only fails it). For a write, *nbytes may be halved by
 * io_error(short_write=True). */
static int fault_gate(int op, const char *p1, const char *p2, int mutating, size_t *nbytes) {
    int err = 0;
    double sleep_s = 0;
    lock();
    for (int i = 0; i < MAX_FAULTS && !err; i++) {
        struct fault *f = &g_faults[i];
        if (!f->used || !(in_scope(f, p1) || in_scope(f, p2))) continue;
        switch (f->kind) {
        case K_READ_ONLY:
            if (mutating) {
                f->calls++;
                f->fired++;
                err = EROFS;
            }
            break;
        case K_IO_ERROR:
            if (f->on != op) break;
            if (f->short_write) {
                if (op != OP_WRITE || !nbytes || *nbytes < 2) break;
                if (tick(f)) *nbytes /= 2;
            } else if (tick(f)) {
                err = f->err;
            }
            break;
        case K_SLOW_IO:
            if (f->on == op && tick(f)) sleep_s += f->seconds;
            break;
        default:
            break;
        }
    }
    unlock();
    if (sleep_s > 0) {
        struct timespec ts = {(time_t)sleep_s, (long)((sleep_s - (double)(time_t)sleep_s) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    return err;
}

static int disk_full_covers(const char *abs) {
    int hit = 0;
    lock();
    for (int i = 0; i < MAX_FAULTS && !hit; i++)
        hit = g_faults[i].used && g_faults[i].kind == K_DISK_FULL && in_scope(&g_faults[i], abs);
    unlock();
    return hit;
}

/* Space taken (delta > 0) or given back (delta < 0) by a file under the disk_full paths. */
static void space_change(const char *abs, long long delta) {
    if (!delta) return;
    lock();
    for (int i = 0; i < MAX_FAULTS; i++) {
        struct fault *f = &g_faults[i];
        if (!f->used || f->kind != K_DISK_FULL || !in_scope(f, abs)) continue;
        f->free_bytes -= delta;
        if (f->free_bytes < 0) f->free_bytes = 0;
    }
    unlock();
}

/* A write of n bytes at off into a file of `size` bytes: how many of them fit in every
 * disk_full covering it; reserves the growth (space_settle gives back what was not used). */
struct reservation {
    long long taken[MAX_FAULTS];
};
static size_t space_reserve(const char *abs, long long off, size_t n, long long size,
                            struct reservation *r) {
    size_t fit = n;
    lock();
    for (int i = 0; i < MAX_FAULTS; i++) {
        struct fault *f = &g_faults[i];
        r->taken[i] = 0;
        if (!f->used || f->kind != K_DISK_FULL || !in_scope(f, abs)) continue;
        long long end = size + f->free_bytes; /* the file may grow up to here */
        size_t here = off >= end ? 0 : (off + (long long)n > end ? (size_t)(end - off) : n);
        f->calls++;
        if (here < n) f->fired++;
        if (here < fit) fit = here;
    }
    for (int i = 0; i < MAX_FAULTS; i++) {
        struct fault *f = &g_faults[i];
        if (!f->used || f->kind != K_DISK_FULL || !in_scope(f, abs)) continue;
        long long grow = off + (long long)fit - size;
        if (grow > 0) {
            r->taken[i] = grow;
            f->free_bytes -= grow;
        }
    }
    unlock();
    return fit;
}

static void space_settle(long long off, ssize_t written, long long size, struct reservation *r) {
    long long grow = written > 0 ? off + written - size : 0;
    if (grow < 0) grow = 0;
    lock();
    for (int i = 0; i < MAX_FAULTS; i++) {
        if (r->taken[i] > grow && g_faults[i].used) g_faults[i].free_bytes += r->taken[i] - grow;
    }
    unlock();
}

/* ---------------------------------------------------------------------------------------- */
/* Opening files                                                                             */

static int is_write_open(int flags) {
    return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
}

static void record_open(int fd, const char *rel, int flags, const char *sys, long n) {
    struct stat st;
    struct buf b;
    if (fstat(fd, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        b_begin(&b, "opendir");
        b_str(&b, "path", rel);
    } else if (S_ISREG(st.st_mode)) {
        b_begin(&b, "open");
        b_str(&b, "path", rel);
        b_int(&b, "flags", flags);
        b_int(&b, "ino", (long long)st.st_ino);
    } else {
        return;
    }
    b_emit(&b, sys, n);
}

enum openv { V_OPEN, V_OPEN64, V_OPENAT, V_OPENAT64, V_OPEN2, V_OPEN64_2, V_OPENAT2, V_OPENAT64_2,
             V_CREAT, V_CREAT64 };

static int call_open(enum openv v, int dirfd, const char *path, int flags, mode_t mode) {
    switch (v) {
    case V_OPEN: return real_open(path, flags, mode);
    case V_OPEN64: return real_open64(path, flags, mode);
    case V_OPENAT: return real_openat(dirfd, path, flags, mode);
    case V_OPENAT64: return real_openat64(dirfd, path, flags, mode);
    case V_OPEN2: return real___open_2(path, flags);
    case V_OPEN64_2: return real___open64_2(path, flags);
    case V_OPENAT2: return real___openat_2(dirfd, path, flags);
    case V_OPENAT64_2: return real___openat64_2(dirfd, path, flags);
    case V_CREAT: return real_creat(path, mode);
    case V_CREAT64: return real_creat64(path, mode);
    }
    errno = ENOSYS;
    return -1;
}

static int hook_open(enum openv v, const char *sys, int dirfd, const char *path, int flags,
                     mode_t mode) {
    struct scope s;
    char abs[PATH_MAX];
    enter(&s);
    int have = resolve(dirfd, path, abs, sizeof abs) == 0;
    const char *rel = have ? rel_of(abs) : NULL;
    long n = rel ? number_call("open", sys, rel) : 0;
    int err = have && FAULTING() ? fault_gate(OP_OPEN, abs, NULL, is_write_open(flags), NULL) : 0;
    if (err) {
        leave(&s, err);
        return -1;
    }
    long long old_size = -1;
    struct stat st;
    if (have && (flags & O_TRUNC) && FAULTING() && disk_full_covers(abs) && stat(abs, &st) == 0 &&
        S_ISREG(st.st_mode))
        old_size = st.st_size;
    errno = s.saved_errno;
    int fd = call_open(v, dirfd, path, flags, mode);
    int e = errno;
    if (fd >= 0) {
        if (have && fstat(fd, &st) == 0) fd_store(fd, abs, &st);
        if (old_size > 0) space_change(abs, -old_size);
        if (rel) record_open(fd, rel, flags, sys, n);
    }
    leave(&s, e);
    return fd;
}

#define MODE_ARG(flags, mode)                                                              \
    mode_t mode = 0;                                                                       \
    if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) {                       \
        va_list ap;                                                                        \
        va_start(ap, flags);                                                               \
        mode = (mode_t)va_arg(ap, int);                                                    \
        va_end(ap);                                                                        \
    }

EXPORT int open(const char *path, int flags, ...) {
    MODE_ARG(flags, mode);
    NEED(open, -1);
    if (INERT()) return real_open(path, flags, mode);
    return hook_open(V_OPEN, "open", AT_FDCWD, path, flags, mode);
}
EXPORT int open64(const char *path, int flags, ...) {
    MODE_ARG(flags, mode);
    NEED(open64, -1);
    if (INERT()) return real_open64(path, flags, mode);
    return hook_open(V_OPEN64, "open64", AT_FDCWD, path, flags, mode);
}
EXPORT int openat(int dirfd, const char *path, int flags, ...) {
    MODE_ARG(flags, mode);
    NEED(openat, -1);
    if (INERT()) return real_openat(dirfd, path, flags, mode);
    return hook_open(V_OPENAT, "openat", dirfd, path, flags, mode);
}
EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
    MODE_ARG(flags, mode);
    NEED(openat64, -1);
    if (INERT()) return real_openat64(dirfd, path, flags, mode);
    return hook_open(V_OPENAT64, "openat64", dirfd, path, flags, mode);
}
EXPORT int __open_2(const char *path, int flags) {
    NEED(__open_2, -1);
    if (INERT()) return real___open_2(path, flags);
    return hook_open(V_OPEN2, "__open_2", AT_FDCWD, path, flags, 0);
}
EXPORT int __open64_2(const char *path, int flags) {
    NEED(__open64_2, -1);
    if (INERT()) return real___open64_2(path, flags);
    return hook_open(V_OPEN64_2, "__open64_2", AT_FDCWD, path, flags, 0);
}
EXPORT int __openat_2(int dirfd, const char *path, int flags) {
    NEED(__openat_2, -1);
    if (INERT()) return real___openat_2(dirfd, path, flags);
    return hook_open(V_OPENAT2, "__openat_2", dirfd, path, flags, 0);
}
EXPORT int __openat64_2(int dirfd, const char *path, int flags) {
    NEED(__openat64_2, -1);
    if (INERT()) return real___openat64_2(dirfd, path, flags);
    return hook_open(V_OPENAT64_2, "__openat64_2", dirfd, path, flags, 0);
}
EXPORT int creat(const char *path, mode_t mode) {
    NEED(creat, -1);
    if (INERT()) return real_creat(path, mode);
    return hook_open(V_CREAT, "creat", AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}
EXPORT int creat64(const char *path, mode_t mode) {
    NEED(creat64, -1);
    if (INERT()) return real_creat64(path, mode);
    return hook_open(V_CREAT64, "creat64", AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* ---------------------------------------------------------------------------------------- */
/* Writing                                                                                   */

enum writev_kind { W_WRITE, W_PWRITE, W_PWRITE64, W_WRITEV, W_PWRITEV, W_PWRITEV64, W_PWRITEV2,
                   W_PWRITEV64V2 };

static ssize_t call_write(enum writev_kind k, int fd, const struct iovec *iov, int cnt, off_t off,
                          int flags) {
    switch (k) {
    case W_WRITE: return real_write(fd, iov[0].iov_base, iov[0].iov_len);
    case W_PWRITE: return real_pwrite(fd, iov[0].iov_base, iov[0].iov_len, off);
    case W_PWRITE64: return real_pwrite64(fd, iov[0].iov_base, iov[0].iov_len, off);
    case W_WRITEV: return real_writev(fd, iov, cnt);
    case W_PWRITEV: return real_pwritev(fd, iov, cnt, off);
    case W_PWRITEV64: return real_pwritev64(fd, iov, cnt, off);
    case W_PWRITEV2: return real_pwritev2(fd, iov, cnt, off, flags);
    case W_PWRITEV64V2: return real_pwritev64v2(fd, iov, cnt, off, flags);
    }
    errno = ENOSYS;
    return -1;
}

static void record_write_bytes(const char *rel, const struct stat *st, long long off,
                               const unsigned char *data, size_t n, const char *sys, long num) {
    struct buf b;
    b_begin(&b, "write");
    b_str(&b, "path", rel);
    b_int(&b, "ino", (long long)st->st_ino);
    b_int(&b, "off", off);
    b_base64(&b, "data", data, n);
    b_emit(&b, sys, num);
}

/* Record the first n bytes of iov as written at off. */
static void record_write_iov(const char *rel, const struct stat *st, long long off,
                             const struct iovec *iov, int cnt, size_t n, const char *sys,
                             long num) {
    if (cnt == 1 || (cnt > 0 && iov[0].iov_len >= n)) {
        record_write_bytes(rel, st, off, iov[0].iov_base, n, sys, num);
        return;
    }
    unsigned char *flat = malloc(n ? n : 1);
    if (!flat) {
        record_write_bytes(rel, st, off, NULL, 0, sys, num);
        return;
    }
    size_t at = 0;
    for (int i = 0; i < cnt && at < n; i++) {
        size_t take = iov[i].iov_len < n - at ? iov[i].iov_len : n - at;
        memcpy(flat + at, iov[i].iov_base, take);
        at += take;
    }
    record_write_bytes(rel, st, off, flat, n, sys, num);
    free(flat);
}

/* A write to an O_SYNC/O_DSYNC file (or with RWF_SYNC/RWF_DSYNC) is durable when it returns,
 * as if fdatasync followed: recorded as an fsync of the same call. */
static void record_implied_sync(const char *rel, const struct stat *st, const char *sys,
                                long n) {
    struct buf b;
    b_begin(&b, "fsync");
    b_str(&b, "path", rel);
    b_int(&b, "ino", (long long)st->st_ino);
    b_emit(&b, sys, n);
}

static size_t iov_total(const struct iovec *iov, int cnt) {
    size_t total = 0;
    for (int i = 0; i < cnt; i++) total += iov[i].iov_len;
    return total;
}

/* The first `limit` bytes of iov, in `out` (which holds up to `room` entries). */
static int iov_clip(const struct iovec *iov, int cnt, size_t limit, struct iovec *out, int room) {
    int m = 0;
    for (int i = 0; i < cnt && limit && m < room; i++) {
        out[m] = iov[i];
        if (out[m].iov_len > limit) out[m].iov_len = limit;
        limit -= out[m].iov_len;
        m++;
    }
    return m;
}

/* Where the next write to fd lands when it has no explicit offset. */
static long long current_offset(int fd, const struct stat *st) {
    int fl = real_fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_APPEND)) return st->st_size;
    return (long long)lseek(fd, 0, SEEK_CUR);
}

static ssize_t hook_write(enum writev_kind k, const char *sys, int fd, const struct iovec *iov,
                          int cnt, off_t off, int flags) {
    struct scope s;
    struct stat st;
    char abs[PATH_MAX];
    enter(&s);
    int positioned = k == W_PWRITE || k == W_PWRITE64 || k == W_PWRITEV || k == W_PWRITEV64 ||
                     ((k == W_PWRITEV2 || k == W_PWRITEV64V2) && off != -1);
    if (fd_info(fd, &st, abs, sizeof abs) != 0 || !S_ISREG(st.st_mode) || !abs[0]) {
        errno = s.saved_errno;
        t_guard--;
        return call_write(k, fd, iov, cnt, off, flags);
    }
    const char *rel = rel_of(abs);
    long n = rel ? number_call("write", sys, rel) : 0;
    size_t total = iov_total(iov, cnt);
    size_t limit = total;
    struct reservation r;
    long long pre_off = -1;
    int reserved = 0;
    if (FAULTING()) {
        int err = fault_gate(OP_WRITE, abs, NULL, 1, &limit);
        if (!err && limit && disk_full_covers(abs)) {
            int fl = real_fcntl(fd, F_GETFL);
            int appends = (fl >= 0 && (fl & O_APPEND)) ||
                          ((k == W_PWRITEV2 || k == W_PWRITEV64V2) && (flags & RWF_APPEND));
            /* where the bytes will land: the end for appends (pwrite on an O_APPEND fd too) */
            pre_off = appends ? (long long)st.st_size
                              : positioned ? (long long)off : (long long)lseek(fd, 0, SEEK_CUR);
            limit = space_reserve(abs, pre_off, limit, st.st_size, &r);
            reserved = 1;
            if (limit == 0) err = ENOSPC;
        }
        if (err) {
            if (reserved) space_settle(pre_off, -1, st.st_size, &r);
            leave(&s, err);
            return -1;
        }
    }
    struct iovec clipped[64];
    const struct iovec *use = iov;
    int ucnt = cnt;
    struct iovec *heap = NULL;
    if (limit < total) {
        struct iovec *dst = clipped;
        if (cnt > 64) heap = dst = malloc((size_t)cnt * sizeof *dst);
        if (!dst) {
            if (reserved) space_settle(pre_off, -1, st.st_size, &r);
            leave(&s, ENOMEM);
            return -1;
        }
        ucnt = iov_clip(iov, cnt, limit, dst, cnt > 64 ? cnt : 64);
        use = dst;
    }
    errno = s.saved_errno;
    ssize_t ret = call_write(k, fd, use, ucnt, off, flags);
    int e = errno;
    if (reserved) space_settle(pre_off, ret, st.st_size, &r);
    if (ret > 0 && rel) {
        long long landed;
        int fl = real_fcntl(fd, F_GETFL);
        int appended = (fl >= 0 && (fl & O_APPEND)) ||
                       ((k == W_PWRITEV2 || k == W_PWRITEV64V2) && (flags & RWF_APPEND));
        if (positioned && !appended) {
            landed = off;
        } else if (positioned) { /* pwrite on an O_APPEND fd appends (Linux) */
            struct stat after;
            landed = fstat(fd, &after) == 0 ? (long long)after.st_size - ret : off;
        } else {
            landed = (long long)lseek(fd, 0, SEEK_CUR) - ret;
        }
        record_write_iov(rel, &st, landed, use, ucnt, (size_t)ret, sys, n);
        if ((fl >= 0 && (fl & O_DSYNC)) ||
            ((k == W_PWRITEV2 || k == W_PWRITEV64V2) && (flags & (RWF_DSYNC | RWF_SYNC))))
            record_implied_sync(rel, &st, sys, n);
    }
    free(heap);
    leave(&s, e);
    return ret;
}

#define ONE_IOV(buf, count) struct iovec one = {(void *)(buf), (count)}

EXPORT ssize_t write(int fd, const void *buf, size_t count) {
    NEED(write, -1);
    if (INERT()) return real_write(fd, buf, count);
    ONE_IOV(buf, count);
    return hook_write(W_WRITE, "write", fd, &one, 1, 0, 0);
}
EXPORT ssize_t pwrite(int fd, const void *buf, size_t count, off_t off) {
    NEED(pwrite, -1);
    if (INERT()) return real_pwrite(fd, buf, count, off);
    ONE_IOV(buf, count);
    return hook_write(W_PWRITE, "pwrite", fd, &one, 1, off, 0);
}
EXPORT ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t off) {
    NEED(pwrite64, -1);
    if (INERT()) return real_pwrite64(fd, buf, count, off);
    ONE_IOV(buf, count);
    return hook_write(W_PWRITE64, "pwrite64", fd, &one, 1, off, 0);
}
EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    NEED(writev, -1);
    if (INERT() || cnt <= 0) return real_writev(fd, iov, cnt);
    return hook_write(W_WRITEV, "writev", fd, iov, cnt, 0, 0);
}
EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
    NEED(pwritev, -1);
    if (INERT() || cnt <= 0) return real_pwritev(fd, iov, cnt, off);
    return hook_write(W_PWRITEV, "pwritev", fd, iov, cnt, off, 0);
}
EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off) {
    NEED(pwritev64, -1);
    if (INERT() || cnt <= 0) return real_pwritev64(fd, iov, cnt, off);
    return hook_write(W_PWRITEV64, "pwritev64", fd, iov, cnt, off, 0);
}
EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) {
    NEED(pwritev2, -1);
    if (INERT() || cnt <= 0) return real_pwritev2(fd, iov, cnt, off, flags);
    return hook_write(W_PWRITEV2, "pwritev2", fd, iov, cnt, off, flags);
}
EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags) {
    NEED(pwritev64v2, -1);
    if (INERT() || cnt <= 0) return real_pwritev64v2(fd, iov, cnt, off, flags);
    return hook_write(W_PWRITEV64V2, "pwritev64v2", fd, iov, cnt, off, flags);
}

static size_t pread_all(int fd, unsigned char *data, size_t n, long long off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = real_pread64(fd, data + got, n - got, (off64_t)(off + (long long)got));
        if (r <= 0) break;
        got += (size_t)r;
    }
    return got;
}

/* copy_file_range / sendfile: the kernel moves the bytes; they are read back (with the real
 * pread) from where they landed, or, when the destination is write-only, from where they came
 * from (in_off: the source offset before the call, -1 when unknown). */
static void record_copied(const char *rel, int fd, const struct stat *st, long long off,
                          size_t n, int in_fd, long long in_off, const char *sys, long num) {
    unsigned char *data = malloc(n ? n : 1);
    size_t got = data ? pread_all(fd, data, n, off) : 0;
    if (data && got < n && in_off >= 0) got = pread_all(in_fd, data, n, in_off);
    if (data && got == n) {
        record_write_bytes(rel, st, off, data, n, sys, num);
    } else { /* not readable back (a write-only fd): the bytes cannot be seen */
        struct buf b;
        b_begin(&b, "unobserved");
        b_str(&b, "path", rel);
        b_int(&b, "ino", (long long)st->st_ino);
        b_str(&b, "why", "copied bytes not readable back");
        b_emit(&b, sys, num);
    }
    free(data);
}

/* Shared by copy_file_range and sendfile: `out_off` is the explicit offset or NULL. */
static ssize_t hook_copy(const char *sys, int out_fd, long long *out_off_value, int in_fd,
                         long long in_off, size_t len, ssize_t (*call)(size_t len, void *ctx),
                         void *ctx) {
    struct scope s;
    struct stat st;
    char abs[PATH_MAX];
    enter(&s);
    if (fd_info(out_fd, &st, abs, sizeof abs) != 0 || !S_ISREG(st.st_mode) || !abs[0]) {
        errno = s.saved_errno;
        t_guard--;
        return call(len, ctx);
    }
    const char *rel = rel_of(abs);
    long n = rel ? number_call("write", sys, rel) : 0;
    size_t limit = len;
    struct reservation r;
    long long pre_off = out_off_value ? *out_off_value : current_offset(out_fd, &st);
    int reserved = 0;
    if (FAULTING()) {
        int err = fault_gate(OP_WRITE, abs, NULL, 1, &limit);
        if (!err && limit && disk_full_covers(abs)) {
            limit = space_reserve(abs, pre_off, limit, st.st_size, &r);
            reserved = 1;
            if (limit == 0) err = ENOSPC;
        }
        if (err) {
            if (reserved) space_settle(pre_off, -1, st.st_size, &r);
            leave(&s, err);
            return -1;
        }
    }
    errno = s.saved_errno;
    ssize_t ret = call(limit, ctx);
    int e = errno;
    if (reserved) space_settle(pre_off, ret, st.st_size, &r);
    if (ret > 0 && rel) {
        long long landed = out_off_value ? pre_off : (long long)lseek(out_fd, 0, SEEK_CUR) - ret;
        if (in_off < 0) in_off = (long long)lseek(in_fd, 0, SEEK_CUR) - ret;
        record_copied(rel, out_fd, &st, landed, (size_t)ret, in_fd, in_off, sys, n);
        int fl = real_fcntl(out_fd, F_GETFL);
        if (fl >= 0 && (fl & O_DSYNC)) record_implied_sync(rel, &st, sys, n);
    }
    leave(&s, e);
    return ret;
}

struct cfr_args {
    int fd_in, fd_out;
    off64_t *off_in, *off_out;
    unsigned int flags;
};
static ssize_t cfr_call(size_t len, void *ctx) {
    struct cfr_args *a = ctx;
    return real_copy_file_range(a->fd_in, a->off_in, a->fd_out, a->off_out, len, a->flags);
}
EXPORT ssize_t copy_file_range(int fd_in, off64_t *off_in, int fd_out, off64_t *off_out,
                               size_t len, unsigned int flags) {
    NEED(copy_file_range, -1);
    if (INERT()) return real_copy_file_range(fd_in, off_in, fd_out, off_out, len, flags);
    struct cfr_args a = {fd_in, fd_out, off_in, off_out, flags};
    long long out_off = off_out ? (long long)*off_out : 0;
    long long in_off = off_in ? (long long)*off_in : -1;
    return hook_copy("copy_file_range", fd_out, off_out ? &out_off : NULL, fd_in, in_off, len,
                     cfr_call, &a);
}

struct sf_args {
    int is64, out_fd, in_fd;
    off_t *off;
    off64_t *off64;
};
static ssize_t sf_call(size_t len, void *ctx) {
    struct sf_args *a = ctx;
    if (a->is64) return real_sendfile64(a->out_fd, a->in_fd, a->off64, len);
    return real_sendfile(a->out_fd, a->in_fd, a->off, len);
}
EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
    NEED(sendfile, -1);
    if (INERT()) return real_sendfile(out_fd, in_fd, offset, count);
    struct sf_args a = {0, out_fd, in_fd, offset, NULL};
    return hook_copy("sendfile", out_fd, NULL, in_fd, offset ? (long long)*offset : -1, count,
                     sf_call, &a);
}
EXPORT ssize_t sendfile64(int out_fd, int in_fd, off64_t *offset, size_t count) {
    NEED(sendfile64, -1);
    if (INERT()) return real_sendfile64(out_fd, in_fd, offset, count);
    struct sf_args a = {1, out_fd, in_fd, NULL, offset};
    return hook_copy("sendfile64", out_fd, NULL, in_fd, offset ? (long long)*offset : -1, count,
                     sf_call, &a);
}

/* ---------------------------------------------------------------------------------------- */
/* Reading (only io_error(on="read") and slow_io(on="read") look at reads)                   */

static int read_gate(int fd) {
    struct stat st;
    char abs[PATH_MAX];
    if (!FAULTING() || !__atomic_load_n(&g_read_faults, __ATOMIC_RELAXED)) return 0;
    if (fd_info(fd, &st, abs, sizeof abs) != 0 || !abs[0]) return 0;
    return fault_gate(OP_READ, abs, NULL, 0, NULL);
}

#define READ_HOOK(call)                                                                    \
    do {                                                                                   \
        struct scope s;                                                                    \
        enter(&s);                                                                         \
        int err = read_gate(fd);                                                           \
        if (err) {                                                                         \
            leave(&s, err);                                                                \
            return -1;                                                                     \
        }                                                                                  \
        leave(&s, s.saved_errno);                                                          \
        return call;                                                                       \
    } while (0)

EXPORT ssize_t read(int fd, void *buf, size_t count) {
    NEED(read, -1);
    if (INERT()) return real_read(fd, buf, count);
    READ_HOOK(real_read(fd, buf, count));
}
EXPORT ssize_t pread(int fd, void *buf, size_t count, off_t off) {
    NEED(pread, -1);
    if (INERT()) return real_pread(fd, buf, count, off);
    READ_HOOK(real_pread(fd, buf, count, off));
}
EXPORT ssize_t pread64(int fd, void *buf, size_t count, off64_t off) {
    NEED(pread64, -1);
    if (INERT()) return real_pread64(fd, buf, count, off);
    READ_HOOK(real_pread64(fd, buf, count, off));
}

/* The fortified forms (_FORTIFY_SOURCE callers with a known buffer size). */
EXPORT ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen) {
    NEED(__read_chk, -1);
    if (INERT()) return real___read_chk(fd, buf, count, buflen);
    READ_HOOK(real___read_chk(fd, buf, count, buflen));
}
EXPORT ssize_t __pread_chk(int fd, void *buf, size_t count, off_t off, size_t buflen) {
    NEED(__pread_chk, -1);
    if (INERT()) return real___pread_chk(fd, buf, count, off, buflen);
    READ_HOOK(real___pread_chk(fd, buf, count, off, buflen));
}
EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t count, off64_t off, size_t buflen) {
    NEED(__pread64_chk, -1);
    if (INERT()) return real___pread64_chk(fd, buf, count, off, buflen);
    READ_HOOK(real___pread64_chk(fd, buf, count, off, buflen));
}

/* ---------------------------------------------------------------------------------------- */
/* Sizes: truncate, fallocate                                                                */

static void record_trunc(const char *rel, ino_t ino, long long size, const char *sys, long n) {
    struct buf b;
    b_begin(&b, "trunc");
    b_str(&b, "path", rel);
    b_int(&b, "ino", (long long)ino);
    b_int(&b, "size", size);
    b_emit(&b, sys, n);
}

/* A size change of a file under a disk_full path: shrinking gives space back; growing takes
 * what is left (a sparse extension never fails on a real disk). */
static void space_resize(const char *abs, long long before, long long after) {
    if (before >= 0 && after != before) space_change(abs, after - before);
}

static int hook_ftruncate(int is64, int fd, long long length) {
    struct scope s;
    struct stat st;
    char abs[PATH_MAX];
    const char *sys = is64 ? "ftruncate64" : "ftruncate";
    enter(&s);
    int have = fd_info(fd, &st, abs, sizeof abs) == 0 && abs[0] && S_ISREG(st.st_mode);
    const char *rel = have ? rel_of(abs) : NULL;
    long n = rel ? number_call("trunc", sys, rel) : 0;
    int err = have && FAULTING() ? fault_gate(0, abs, NULL, 1, NULL) : 0;
    if (err) {
        leave(&s, err);
        return -1;
    }
    errno = s.saved_errno;
    int ret = is64 ? real_ftruncate64(fd, length) : real_ftruncate(fd, length);
    int e = errno;
    if (ret == 0 && have) {
        if (FAULTING()) space_resize(abs, st.st_size, length);
        if (rel) record_trunc(rel, st.st_ino, length, sys, n);
    }
    leave(&s, e);
    return ret;
}
EXPORT int ftruncate(int fd, off_t length) {
    NEED(ftruncate, -1);
    if (INERT()) return real_ftruncate(fd, length);
    return hook_ftruncate(0, fd, length);
}
EXPORT int ftruncate64(int fd, off64_t length) {
    NEED(ftruncate64, -1);
    if (INERT()) return real_ftruncate64(fd, length);
    return hook_ftruncate(1, fd, length);
}

static int hook_truncate(int is64, const char *path, long long length) {
    struct scope s;
    struct stat st;
    char abs[PATH_MAX];
    const char *sys = is64 ? "truncate64" : "truncate";
    enter(&s);
    int have = resolve(AT_FDCWD, path, abs, sizeof abs) == 0;
    const char *rel = have ? rel_of(abs) : NULL;
    long n = rel ? number_call("trunc", sys, rel) : 0;
    int err = have && FAULTING() ? fault_gate(0, abs, NULL, 1, NULL) : 0;
    if (err) {
        leave(&s, err);
        return -1;
    }
    long long before = have && stat(path, &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : -1;
    errno = s.saved_errno;
    int ret = is64 ? real_truncate64(path, length) : real_truncate(path, length);
    int e = errno;
    if (ret == 0 && have) {
        if (FAULTING()) space_resize(abs, before, length);
        if (rel && stat(path, &st) == 0) record_trunc(rel, st.st_ino, length, sys, n);
    }
    leave(&s, e);
    return ret;
}
EXPORT int truncate(const char *path, off_t length) {
    NEED(truncate, -1);
    if (INERT()) return real_truncate(path, length);
    return hook_truncate(0, path, length);
}
EXPORT int truncate64(const char *path, off64_t length) {
    NEED(truncate64, -1);
    if (INERT()) return real_truncate64(path, length);
    return hook_truncate(1, path, length);
}

/* fallocate/posix_fallocate: space accounting (ENOSPC when the growth does not fit, nothing
 * allocated); a size-changing allocation is recorded as a trunc to the new size. Returns the
 * error number (posix_fallocate style) or 0, and -2 when the call is not ours to handle. */
static int hook_fallocate(const char *sys, int fd, int mode, long long off, long long len,
                          int (*call)(void *ctx), void *ctx, int *ret) {
    struct scope s;
    struct stat st;
    char abs[PATH_MAX];
    enter(&s);
    int have = fd_info(fd, &st, abs, sizeof abs) == 0 && abs[0] && S_ISREG(st.st_mode);
    const char *rel = have ? rel_of(abs) : NULL;
    long long end = off + len;
    int grows = have && mode == 0 && end > st.st_size;
    long n = rel && grows ? number_call("trunc", sys, rel) : 0;
    if (have && FAULTING()) {
        int err = fault_gate(0, abs, NULL, 1, NULL);
        if (!err && grows && disk_full_covers(abs)) {
            struct reservation r;
            size_t need = (size_t)(end - st.st_size);
            if (space_reserve(abs, st.st_size, need, st.st_size, &r) < need) {
                space_settle(st.st_size, -1, st.st_size, &r);
                err = ENOSPC;
            } else {
                errno = s.saved_errno;
                *ret = call(ctx);
                int e = errno;
                /* The call's own error: posix_fallocate returns it, fallocate sets errno. */
                int failed = *ret != 0;
                space_settle(st.st_size, failed ? -1 : (ssize_t)need, st.st_size, &r);
                if (!failed && rel) record_trunc(rel, st.st_ino, end, sys, n);
                leave(&s, e);
                return 0;
            }
        }
        if (err) {
            leave(&s, s.saved_errno);
            return err;
        }
    }
    errno = s.saved_errno;
    *ret = call(ctx);
    int e = errno;
    if (*ret == 0 && rel && grows) record_trunc(rel, st.st_ino, end, sys, n);
    leave(&s, e);
    return 0;
}

struct falloc_args {
    int is64, posix, fd, mode;
    long long off, len;
};
static int falloc_call(void *ctx) {
    struct falloc_args *a = ctx;
    if (a->posix)
        return a->is64 ? real_posix_fallocate64(a->fd, a->off, a->len)
                       : real_posix_fallocate(a->fd, a->off, a->len);
    return a->is64 ? real_fallocate64(a->fd, a->mode, a->off, a->len)
                   : real_fallocate(a->fd, a->mode, a->off, a->len);
}
EXPORT int fallocate(int fd, int mode, off_t off, off_t len) {
    NEED(fallocate, -1);
    if (INERT()) return real_fallocate(fd, mode, off, len);
    struct falloc_args a = {0, 0, fd, mode, off, len};
    int ret = -1;
    int err = hook_fallocate("fallocate", fd, mode, off, len, falloc_call, &a, &ret);
    if (err) {
        errno = err;
        return -1;
    }
    return ret;
}
EXPORT int fallocate64(int fd, int mode, off64_t off, off64_t len) {
    NEED(fallocate64, -1);
    if (INERT()) return real_fallocate64(fd, mode, off, len);
    struct falloc_args a = {1, 0, fd, mode, off, len};
    int ret = -1;
    int err = hook_fallocate("fallocate64", fd, mode, off, len, falloc_call, &a, &ret);
    if (err) {
        errno = err;
        return -1;
    }
    return ret;
}
EXPORT int posix_fallocate(int fd, off_t off, off_t len) {
    NEED(posix_fallocate, ENOSYS);
    if (INERT()) return real_posix_fallocate(fd, off, len);
    struct falloc_args a = {0, 1, fd, 0, off, len};
    int ret = 0;
    int err = hook_fallocate("posix_fallocate", fd, 0, off, len, falloc_call, &a, &ret);
    return err ? err : ret;
}
EXPORT int posix_fallocate64(int fd, off64_t off, off64_t len) {
    NEED(posix_fallocate64, ENOSYS);
    if (INERT()) return real_posix_fallocate64(fd, off, len);
    struct falloc_args a = {1, 1, fd, 0, off, len};
    int ret = 0;
    int err = hook_fallocate("posix_fallocate64", fd, 0, off, len, falloc_call, &a, &ret);
    return err ? err : ret;
}

/* ---------------------------------------------------------------------------------------- */
/* Syncing                                                                                   */

static int hook_sync(int data_only, int fd) {
    struct scope s;
    struct stat st;
    char abs[PATH_MAX];
    const char *sys = data_only ? "fdatasync" : "fsync";
    enter(&s);
    int have = fd_info(fd, &st, abs, sizeof abs) == 0 && abs[0];
    const char *rel = have ? rel_of(abs) : NULL;
    int dir = have && S_ISDIR(st.st_mode);
    if (rel && !dir && !S_ISREG(st.st_mode)) rel = NULL;
    long n = rel ? number_call(dir ? "dirsync" : "fsync", sys, rel) : 0;
    int err = have && FAULTING() ? fault_gate(OP_FSYNC, abs, NULL, 0, NULL) : 0;
    if (err) {
        leave(&s, err);
        return -1;
    }
    errno = s.saved_errno;
    int ret = data_only ? real_fdatasync(fd) : real_fsync(fd);
    int e = errno;
    if (ret == 0 && rel) {
        struct buf b;
        b_begin(&b, dir ? "dirsync" : "fsync");
        b_str(&b, "path", rel);
        if (!dir) b_int(&b, "ino", (long long)st.st_ino);
        b_emit(&b, sys, n);
    }
    leave(&s, e);
    return ret;
}
EXPORT int fsync(int fd) {
    NEED(fsync, -1);
    if (INERT()) return real_fsync(fd);
    return hook_sync(0, fd);
}
EXPORT int fdatasync(int fd) {
    NEED(fdatasync, -1);
    if (INERT()) return real_fdatasync(fd);
    return hook_sync(1, fd);
}

EXPORT int sync_file_range(int fd, off64_t off, off64_t nbytes, unsigned int flags) {
    NEED(sync_file_range, -1);
    if (INERT() || !TRACING()) return real_sync_file_range(fd, off, nbytes, flags);
    struct scope s;
    struct stat st;
    char abs[PATH_MAX];
    enter(&s);
    int have = fd_info(fd, &st, abs, sizeof abs) == 0 && S_ISREG(st.st_mode);
    const char *rel = have ? rel_of(abs) : NULL;
    long n = rel ? number_call("sfr", "sync_file_range", rel) : 0;
    errno = s.saved_errno;
    int ret = real_sync_file_range(fd, off, nbytes, flags);
    int e = errno;
    if (ret == 0 && rel) {
        struct buf b;
        b_begin(&b, "sfr");
        b_str(&b, "path", rel);
        b_int(&b, "ino", (long long)st.st_ino);
        b_emit(&b, "sync_file_range", n);
    }
    leave(&s, e);
    return ret;
}

static void record_syncfs(const char *sys, long n) {
    struct buf b;
    b_begin(&b, "syncfs");
    b_emit(&b, sys, n);
}

EXPORT int syncfs(int fd) {
    NEED(syncfs, -1);
    if (INERT() || !TRACING()) return real_syncfs(fd);
    struct scope s;
    struct stat st;
    enter(&s);
    int ours = fstat(fd, &st) == 0 && st.st_dev == g_root_dev;
    long n = ours ? number_call("syncfs", "syncfs", ".") : 0;
    errno = s.saved_errno;
    int ret = real_syncfs(fd);
    int e = errno;
    if (ret == 0 && ours) record_syncfs("syncfs", n);
    leave(&s, e);
    return ret;
}

EXPORT void sync(void) {
    LOAD(sync);
    if (!real_sync) return;
    if (INERT() || !TRACING()) {
        real_sync();
        return;
    }
    struct scope s;
    enter(&s);
    long n = number_call("syncfs", "sync", ".");
    real_sync();
    record_syncfs("sync", n);
    leave(&s, s.saved_errno);
}

/* ---------------------------------------------------------------------------------------- */
/* Names: rename, link, unlink, mkdir, rmdir                                                 */

/* The size a path's file gives back when its last link goes (-1: none, or not covered). */
static long long last_link_size(const char *abs) {
    struct stat st;
    if (!FAULTING() || !disk_full_covers(abs)) return -1;
    if (lstat(abs, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) return -1;
    return st.st_size;
}

static void record_names(const char *t, const char *k1, const char *v1, const char *k2,
                         const char *v2, const char *sys, long n) {
    struct buf b;
    b_begin(&b, t);
    b_str(&b, k1, v1);
    if (k2) b_str(&b, k2, v2);
    b_emit(&b, sys, n);
}

/* A file renamed into the root from outside it: its content, as the Python tracer's import. */
static void record_import(const char *src_abs, const char *rel, const char *dst_abs,
                          unsigned char *data, size_t len, const char *sys, long n) {
    struct stat st;
    (void)src_abs;
    if (stat(dst_abs, &st) != 0) return;
    struct buf b;
    b_begin(&b, "import");
    b_str(&b, "path", rel);
    b_int(&b, "ino", (long long)st.st_ino);
    b_base64(&b, "data", data, len);
    b_emit(&b, sys, n);
}

static unsigned char *slurp(const char *abs, size_t *len) {
    struct stat st;
    int fd = real_open(abs, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        real_close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size, got = 0;
    unsigned char *data = malloc(size ? size : 1);
    while (data && got < size) {
        ssize_t r = real_pread64(fd, data + got, size - got, (off64_t)got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    real_close(fd);
    *len = got;
    return data;
}

enum renv { R_RENAME, R_RENAMEAT, R_RENAMEAT2 };

static int hook_rename(enum renv v, const char *sys, int odir, const char *oldp, int ndir,
                       const char *newp, unsigned int flags) {
    struct scope s;
    char a1[PATH_MAX], a2[PATH_MAX];
    enter(&s);
    int h1 = resolve(odir, oldp, a1, sizeof a1) == 0;
    int h2 = resolve(ndir, newp, a2, sizeof a2) == 0;
    const char *rs = h1 ? rel_of(a1) : NULL;
    const char *rd = h2 ? rel_of(a2) : NULL;
    const char *t = rs && rd ? "rename" : rs ? "unlink" : "import";
    long n = rs || rd ? number_call(t, sys, rs ? rs : rd) : 0;
    int err = FAULTING() ? fault_gate(OP_RENAME, h1 ? a1 : NULL, h2 ? a2 : NULL, 1, NULL) : 0;
    if (err) {
        leave(&s, err);
        return -1;
    }
    size_t ilen = 0;
    unsigned char *idata = !rs && rd && h1 ? slurp(a1, &ilen) : NULL;
    long long replaced = h2 && !(flags & RENAME_EXCHANGE) ? last_link_size(a2) : -1;
    struct stat sst, dst;
    if (replaced >= 0 && lstat(a1, &sst) == 0 && lstat(a2, &dst) == 0 && sst.st_ino == dst.st_ino &&
        sst.st_dev == dst.st_dev)
        replaced = -1; /* renaming a file onto another link of itself removes nothing */
    errno = s.saved_errno;
    int ret;
    switch (v) {
    case R_RENAME: ret = real_rename(oldp, newp); break;
    case R_RENAMEAT: ret = real_renameat(odir, oldp, ndir, newp); break;
    default: ret = real_renameat2(odir, oldp, ndir, newp, flags); break;
    }
    int e = errno;
    if (ret == 0) {
        if (replaced > 0) space_change(a2, -replaced);
        if (h1 && h2 && !(flags & RENAME_EXCHANGE)) fd_renamed(a1, a2);
        if (flags & RENAME_EXCHANGE) {
            if (rs) record_names("unobserved", "path", rs, "why", "renameat2 RENAME_EXCHANGE",
                                 sys, n);
            if (rd) record_names("unobserved", "path", rd, "why", "renameat2 RENAME_EXCHANGE",
                                 sys, n);
        } else if (rs && rd) {
            record_names("rename", "src", rs, "dst", rd, sys, n);
        } else if (rs) {
            record_names("unlink", "path", rs, NULL, NULL, sys, n);
        } else if (rd && idata) {
            record_import(a1, rd, a2, idata, ilen, sys, n);
        }
    }
    free(idata);
    leave(&s, e);
    return ret;
}
EXPORT int rename(const char *oldp, const char *newp) {
    NEED(rename, -1);
    if (INERT()) return real_rename(oldp, newp);
    return hook_rename(R_RENAME, "rename", AT_FDCWD, oldp, AT_FDCWD, newp, 0);
}
EXPORT int renameat(int odir, const char *oldp, int ndir, const char *newp) {
    NEED(renameat, -1);
    if (INERT()) return real_renameat(odir, oldp, ndir, newp);
    return hook_rename(R_RENAMEAT, "renameat", odir, oldp, ndir, newp, 0);
}
EXPORT int renameat2(int odir, const char *oldp, int ndir, const char *newp, unsigned int flags) {
    NEED(renameat2, -1);
    if (INERT()) return real_renameat2(odir, oldp, ndir, newp, flags);
    return hook_rename(R_RENAMEAT2, "renameat2", odir, oldp, ndir, newp, flags);
}

static int hook_link(int at, const char *sys, int odir, const char *oldp, int ndir,
                     const char *newp, int flags) {
    struct scope s;
    char a1[PATH_MAX], a2[PATH_MAX];
    enter(&s);
    int h1 = resolve(odir, oldp, a1, sizeof a1) == 0;
    int h2 = resolve(ndir, newp, a2, sizeof a2) == 0;
    const char *rs = h1 ? rel_of(a1) : NULL;
    const char *rd = h2 ? rel_of(a2) : NULL;
    long n = rd ? number_call(rs ? "link" : "import", sys, rd) : 0;
    int err = h2 && FAULTING() ? fault_gate(0, a2, NULL, 1, NULL) : 0;
    if (err) {
        leave(&s, err);
        return -1;
    }
    /* A file linked into the root from outside it appears with its content: an import. */
    size_t ilen = 0;
    unsigned char *idata = !rs && rd && h1 ? slurp(a1, &ilen) : NULL;
    errno = s.saved_errno;
    int ret = at ? real_linkat(odir, oldp, ndir, newp, flags) : real_link(oldp, newp);
    int e = errno;
    if (ret == 0 && rs && rd) record_names("link", "src", rs, "dst", rd, sys, n);
    if (ret == 0 && !rs && rd && idata) record_import(a1, rd, a2, idata, ilen, sys, n);
    free(idata);
    leave(&s, e);
    return ret;
}
EXPORT int link(const char *oldp, const char *newp) {
    NEED(link, -1);
    if (INERT()) return real_link(oldp, newp);
    return hook_link(0, "link", AT_FDCWD, oldp, AT_FDCWD, newp, 0);
}
EXPORT int linkat(int odir, const char *oldp, int ndir, const char *newp, int flags) {
    NEED(linkat, -1);
    if (INERT()) return real_linkat(odir, oldp, ndir, newp, flags);
    return hook_link(1, "linkat", odir, oldp, ndir, newp, flags);
}

enum rmv { U_UNLINK, U_UNLINKAT, U_RMDIR };

static int hook_remove(enum rmv v, const char *sys, int dirfd, const char *path, int flags) {
    struct scope s;
    char abs[PATH_MAX];
    enter(&s);
    int is_dir = v == U_RMDIR || (flags & AT_REMOVEDIR);
    int have = resolve(dirfd, path, abs, sizeof abs) == 0;
    const char *rel = have ? rel_of(abs) : NULL;
    const char *t = is_dir ? "rmdir" : "unlink";
    long n = rel ? number_call(t, sys, rel) : 0;
    int err = have && FAULTING() ? fault_gate(0, abs, NULL, 1, NULL) : 0;
    if (err) {
        leave(&s, err);
        return -1;
    }
    long long freed = have && !is_dir ? last_link_size(abs) : -1;
    errno = s.saved_errno;
    int ret;
    switch (v) {
    case U_UNLINK: ret = real_unlink(path); break;
    case U_UNLINKAT: ret = real_unlinkat(dirfd, path, flags); break;
    default: ret = real_rmdir(path); break;
    }
    int e = errno;
    if (ret == 0) {
        if (freed > 0) space_change(abs, -freed);
        if (rel) record_names(t, "path", rel, NULL, NULL, sys, n);
    }
    leave(&s, e);
    return ret;
}
EXPORT int unlink(const char *path) {
    NEED(unlink, -1);
    if (INERT()) return real_unlink(path);
    return hook_remove(U_UNLINK, "unlink", AT_FDCWD, path, 0);
}
EXPORT int unlinkat(int dirfd, const char *path, int flags) {
    NEED(unlinkat, -1);
    if (INERT()) return real_unlinkat(dirfd, path, flags);
    return hook_remove(U_UNLINKAT, "unlinkat", dirfd, path, flags);
}
EXPORT int rmdir(const char *path) {
    NEED(rmdir, -1);
    if (INERT()) return real_rmdir(path);
    return hook_remove(U_RMDIR, "rmdir", AT_FDCWD, path, 0);
}

static int hook_mkdir(int at, const char *sys, int dirfd, const char *path, mode_t mode) {
    struct scope s;
    char abs[PATH_MAX];
    enter(&s);
    int have = resolve(dirfd, path, abs, sizeof abs) == 0;
    const char *rel = have ? rel_of(abs) : NULL;
    long n = rel ? number_call("mkdir", sys, rel) : 0;
    int err = have && FAULTING() ? fault_gate(0, abs, NULL, 1, NULL) : 0;
    if (err) {
        leave(&s, err);
        return -1;
    }
    errno = s.saved_errno;
    int ret = at ? real_mkdirat(dirfd, path, mode) : real_mkdir(path, mode);
    int e = errno;
    if (ret == 0 && rel) record_names("mkdir", "path", rel, NULL, NULL, sys, n);
    leave(&s, e);
    return ret;
}
EXPORT int mkdir(const char *path, mode_t mode) {
    NEED(mkdir, -1);
    if (INERT()) return real_mkdir(path, mode);
    return hook_mkdir(0, "mkdir", AT_FDCWD, path, mode);
}
EXPORT int mkdirat(int dirfd, const char *path, mode_t mode) {
    NEED(mkdirat, -1);
    if (INERT()) return real_mkdirat(dirfd, path, mode);
    return hook_mkdir(1, "mkdirat", dirfd, path, mode);
}

/* ---------------------------------------------------------------------------------------- */
/* The fd table's upkeep: close, dup, fcntl(F_DUPFD)                                         */

EXPORT int close(int fd) {
    NEED(close, -1);
    if (!INERT()) {
        if (fd >= 0 && fd == __atomic_load_n(&g_rec_fd, __ATOMIC_RELAXED)) {
            errno = EBADF; /* the trace's own descriptor: not the program's to close */
            return -1;
        }
        int e = errno;
        t_guard++;
        fd_forget(fd);
        t_guard--;
        errno = e;
    }
    return real_close(fd);
}

static int after_dup(int oldfd, int newfd) {
    if (newfd >= 0 && !INERT()) {
        int e = errno;
        t_guard++;
        fd_copy(oldfd, newfd);
        t_guard--;
        errno = e;
    }
    return newfd;
}
EXPORT int dup(int fd) {
    NEED(dup, -1);
    return after_dup(fd, real_dup(fd));
}
EXPORT int dup2(int fd, int fd2) {
    NEED(dup2, -1);
    return after_dup(fd, real_dup2(fd, fd2));
}
EXPORT int dup3(int fd, int fd2, int flags) {
    NEED(dup3, -1);
    return after_dup(fd, real_dup3(fd, fd2, flags));
}
/* The argument is read as a pointer-sized value, as glibc's own fcntl does. */
EXPORT int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    NEED(fcntl, -1);
    int ret = real_fcntl(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) return after_dup(fd, ret);
    return ret;
}
EXPORT int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    NEED(fcntl64, -1);
    int ret = real_fcntl64(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) return after_dup(fd, ret);
    return ret;
}

/* ---------------------------------------------------------------------------------------- */
/* What cannot be observed: writable shared maps and stdio streams                           */

static void record_unobserved_fd(int fd, const char *why, const char *sys) {
    struct stat st;
    char abs[PATH_MAX];
    if (fd_info(fd, &st, abs, sizeof abs) != 0 || !S_ISREG(st.st_mode)) return;
    const char *rel = rel_of(abs);
    if (!rel) return;
    long n = number_call("unobserved", sys, rel);
    struct buf b;
    b_begin(&b, "unobserved");
    b_str(&b, "path", rel);
    b_int(&b, "ino", (long long)st.st_ino);
    b_str(&b, "why", why);
    b_emit(&b, sys, n);
}

static void after_mmap(void *ret, int prot, int flags, int fd, const char *sys) {
    if (ret == MAP_FAILED || fd < 0 || !(prot & PROT_WRITE) || (flags & MAP_TYPE) == MAP_PRIVATE)
        return;
    struct scope s;
    enter(&s);
    if (TRACING()) record_unobserved_fd(fd, "writable shared mmap", sys);
    leave(&s, s.saved_errno);
}
EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    NEED(mmap, MAP_FAILED);
    void *ret = real_mmap(addr, len, prot, flags, fd, off);
    if (!INERT()) after_mmap(ret, prot, flags, fd, "mmap");
    return ret;
}
EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off) {
    NEED(mmap64, MAP_FAILED);
    void *ret = real_mmap64(addr, len, prot, flags, fd, off);
    if (!INERT()) after_mmap(ret, prot, flags, fd, "mmap64");
    return ret;
}

static int stdio_writes(const char *mode) { return mode && strpbrk(mode, "wa+") != NULL; }

/* fopen/freopen: the faults of open apply; a stream opened for writing is unobserved (glibc
 * writes it through internal functions no interposition reaches). */
static FILE *hook_fopen(const char *sys, const char *path, const char *mode, FILE *stream,
                        FILE *(*call)(const char *, const char *, FILE *)) {
    struct scope s;
    char abs[PATH_MAX];
    enter(&s);
    int have = resolve(AT_FDCWD, path, abs, sizeof abs) == 0;
    int writes = stdio_writes(mode);
    int err = have && FAULTING() ? fault_gate(OP_OPEN, abs, NULL, writes, NULL) : 0;
    if (err) {
        leave(&s, err);
        return NULL;
    }
    errno = s.saved_errno;
    FILE *f = call(path, mode, stream);
    int e = errno;
    if (f) {
        struct stat st;
        int fd = fileno(f);
        if (have && fd >= 0 && fstat(fd, &st) == 0) fd_store(fd, abs, &st);
        if (writes && TRACING() && fd >= 0) record_unobserved_fd(fd, "stdio stream (FILE*)", sys);
    }
    leave(&s, e);
    return f;
}
static FILE *call_fopen(const char *p, const char *m, FILE *st) {
    (void)st;
    return real_fopen(p, m);
}
static FILE *call_fopen64(const char *p, const char *m, FILE *st) {
    (void)st;
    return real_fopen64(p, m);
}
static FILE *call_freopen(const char *p, const char *m, FILE *st) { return real_freopen(p, m, st); }
static FILE *call_freopen64(const char *p, const char *m, FILE *st) {
    return real_freopen64(p, m, st);
}
EXPORT FILE *fopen(const char *path, const char *mode) {
    NEED(fopen, NULL);
    if (INERT()) return real_fopen(path, mode);
    return hook_fopen("fopen", path, mode, NULL, call_fopen);
}
EXPORT FILE *fopen64(const char *path, const char *mode) {
    NEED(fopen64, NULL);
    if (INERT()) return real_fopen64(path, mode);
    return hook_fopen("fopen64", path, mode, NULL, call_fopen64);
}
EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream) {
    NEED(freopen, NULL);
    if (INERT() || !path) return real_freopen(path, mode, stream);
    return hook_fopen("freopen", path, mode, stream, call_freopen);
}
EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream) {
    NEED(freopen64, NULL);
    if (INERT() || !path) return real_freopen64(path, mode, stream);
    return hook_fopen("freopen64", path, mode, stream, call_freopen64);
}
EXPORT FILE *fdopen(int fd, const char *mode) {
    NEED(fdopen, NULL);
    FILE *f = real_fdopen(fd, mode);
    if (f && !INERT() && TRACING() && stdio_writes(mode)) {
        struct scope s;
        enter(&s);
        record_unobserved_fd(fd, "stdio stream (FILE*)", "fdopen");
        leave(&s, s.saved_errno);
    }
    return f;
}

/* ---------------------------------------------------------------------------------------- */
/* The control API (called from Python with ctypes)                                          */

EXPORT int edgeio_version(void) { return EDGEIO_VERSION; }

/* This library's own fsync and pwrite64 (not the ones symbol lookup finds first). */
extern __typeof__(fsync) edgeio_own_fsync __attribute__((alias("fsync"), visibility("hidden")));
extern __typeof__(pwrite64) edgeio_own_pwrite64
    __attribute__((alias("pwrite64"), visibility("hidden")));

/* 1 when this copy's functions are the ones the process calls (it was preloaded). */
EXPORT int edgeio_interposing(void) {
    return dlsym(RTLD_DEFAULT, "fsync") == (void *)edgeio_own_fsync &&
           dlsym(RTLD_DEFAULT, "pwrite64") == (void *)edgeio_own_pwrite64;
}

/* Start tracing under `root` (a realpath) to record_fd; kill_call "" for no kill point.
 * Returns 0 or an errno value. */
EXPORT int edgeio_trace_start(const char *root, int record_fd, const char *kill_call,
                              long kill_n) {
    struct stat st, rec;
    if (!root || root[0] != '/' || strlen(root) >= sizeof g_root) return EINVAL;
    if (stat(root, &st) != 0) return errno;
    if (strlen(kill_call) >= sizeof g_kill_call) return EINVAL;
    if (fstat(record_fd, &rec) != 0) return errno;
    lock();
    if (__atomic_load_n(&g_on, __ATOMIC_RELAXED) & ON_TRACE) {
        unlock();
        return EBUSY;
    }
    /* A private duplicate above the usual numbers, closed on exec: the program may close its
     * own record fd while tracing; an exec'd process does not inherit it. */
    int own = real_fcntl(record_fd, F_DUPFD_CLOEXEC, 512);
    if (own < 0) own = real_fcntl(record_fd, F_DUPFD_CLOEXEC, 3);
    if (own < 0) {
        int e = errno;
        unlock();
        return e;
    }
    snprintf(g_root, sizeof g_root, "%s", root);
    g_root_len = strlen(g_root);
    while (g_root_len > 1 && g_root[g_root_len - 1] == '/') g_root[--g_root_len] = '\0';
    g_root_dev = st.st_dev;
    g_rec_fd = own;
    g_rec_dev = rec.st_dev;
    g_rec_ino = rec.st_ino;
    g_calls = 0;
    snprintf(g_kill_call, sizeof g_kill_call, "%s", kill_call);
    g_kill_n = kill_n;
    g_kill_seen = 0;
    fd_clear_all();
    __atomic_fetch_or(&g_on, ON_TRACE, __ATOMIC_SEQ_CST);
    unlock();
    return 0;
}

EXPORT int edgeio_trace_stop(void) {
    lock();
    __atomic_fetch_and(&g_on, ~ON_TRACE, __ATOMIC_SEQ_CST);
    if (g_rec_fd >= 0) real_close(g_rec_fd);
    g_rec_fd = -1;
    g_kill_call[0] = '\0';
    unlock();
    return 0;
}

EXPORT long edgeio_trace_calls(void) {
    lock();
    long n = g_calls;
    unlock();
    return n;
}

/* Arm a fault; returns its slot (>= 0) or -errno. kind: 1 disk_full, 2 io_error, 3 read_only,
 * 4 slow_io; on: OP_* bit; times < 0: no limit; probability < 0: always; w1 <= w0: no window. */
EXPORT int edgeio_arm(int kind, const char *prefix, int on, long nth, long every, long times,
                      double probability, unsigned long long seed, int short_write, int err,
                      long long free_bytes, double seconds, double w0, double w1) {
    if (kind < K_DISK_FULL || kind > K_SLOW_IO || !prefix || prefix[0] != '/' ||
        strlen(prefix) >= PATH_MAX)
        return -EINVAL;
    lock();
    int slot = -1;
    for (int i = 0; i < MAX_FAULTS && slot < 0; i++)
        if (!g_faults[i].used) slot = i;
    if (slot < 0) {
        unlock();
        return -ENOSPC;
    }
    struct fault *f = &g_faults[slot];
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->on = on;
    snprintf(f->prefix, sizeof f->prefix, "%s", prefix);
    f->plen = strlen(f->prefix);
    while (f->plen > 1 && f->prefix[f->plen - 1] == '/') f->prefix[--f->plen] = '\0';
    f->every = every > 0 ? every : 0;
    f->first = nth > 0 ? nth : (f->every ? f->every : 1);
    f->times = times;
    f->probability = probability;
    f->rng = seed;
    f->short_write = short_write;
    f->err = err;
    f->free_bytes = free_bytes;
    f->seconds = seconds;
    f->w0 = w0;
    f->w1 = w1;
    clock_gettime(CLOCK_MONOTONIC, &f->armed);
    f->used = 1;
    if ((kind == K_IO_ERROR || kind == K_SLOW_IO) && on == OP_READ) g_read_faults++;
    if (!(__atomic_load_n(&g_on, __ATOMIC_RELAXED) & ON_FAULTS)) fd_clear_all();
    __atomic_fetch_or(&g_on, ON_FAULTS, __ATOMIC_SEQ_CST);
    unlock();
    return slot;
}

EXPORT int edgeio_disarm(int slot) {
    if (slot < 0 || slot >= MAX_FAULTS) return EINVAL;
    lock();
    struct fault *f = &g_faults[slot];
    if (f->used && (f->kind == K_IO_ERROR || f->kind == K_SLOW_IO) && f->on == OP_READ)
        g_read_faults--;
    f->used = 0;
    int any = 0;
    for (int i = 0; i < MAX_FAULTS; i++) any |= g_faults[i].used;
    if (!any) __atomic_fetch_and(&g_on, ~ON_FAULTS, __ATOMIC_SEQ_CST);
    unlock();
    return 0;
}

/* A fault's counters: which 0 calls, 1 fired, 2 free bytes left (disk_full). */
EXPORT long long edgeio_fault_stat(int slot, int which) {
    if (slot < 0 || slot >= MAX_FAULTS) return -1;
    lock();
    struct fault *f = &g_faults[slot];
    long long v = which == 0 ? f->calls : which == 1 ? f->fired : f->free_bytes;
    unlock();
    return v;
}
