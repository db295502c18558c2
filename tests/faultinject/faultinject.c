/* Purpose:   A fault injector for hikyaku's durability tests: an LD_PRELOAD
 *            shim that makes chosen file-system calls fail with a chosen
 *            errno (ENOSPC, EIO, ...) for paths under a chosen directory,
 *            and can be switched on and off while the server runs. No FUSE,
 *            no kernel help: the calls are intercepted where the program
 *            calls them (its dynamic symbols), the file system itself is
 *            never touched.
 * Interface (environment of the traced process):
 *   FAULTINJECT_CONTROL  a file; faults are on only while it exists. Lines
 *                        KEY=VALUE in it (keys as below, lower case, without
 *                        the prefix: calls=fdatasync) override the
 *                        environment, so a test can change the fault without
 *                        a restart. Unset: faults always on.
 *   FAULTINJECT_CALLS    comma list of: write (write, writev), pwrite
 *                        (pwrite, pwritev), fdatasync, fsync, rename (rename,
 *                        renameat, renameat2), link (link, linkat), openat
 *                        (every open that may create or write: O_CREAT,
 *                        O_WRONLY, O_RDWR, O_TRUNC; reads are never failed).
 *   FAULTINJECT_ERRNO    ENOSPC, EIO, EDQUOT, EROFS or a number (default EIO).
 *   FAULTINJECT_PREFIX   absolute path: a call fails only when its path (the
 *                        file an fd refers to, via /proc/self/fd, or either
 *                        path of rename/link) starts with it. Required.
 *   FAULTINJECT_AFTER    let this many matching calls succeed first (0).
 *   FAULTINJECT_TIMES    then fail this many (0 = every one after).
 *   The count of matching calls starts again whenever a call finds the
 *   control file gone. Each injected failure is reported on stderr as
 *   "faultinject: CALL PATH: STRERROR" (tests wait for that line).
 * Build:     cc -shared -fPIC -O2 -o libfaultinject.so faultinject.c -ldl
 *            (tests/integration/faultinject.py does it per test session).
 * Trust:     test code only; never linked into hikyaku.
 * Concurrency: thread-safe: the settings are re-read per call, the count is
 *            atomic.
 * Errors:    a failing call returns -1 with errno set, as the real one would.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum call { kWrite, kPwrite, kFdatasync, kFsync, kRename, kLink, kOpenat, kCalls };
static const char *const kCallNames[kCalls] = {"write", "pwrite", "fdatasync", "fsync",
                                               "rename", "link", "openat"};

struct settings {
  unsigned calls; /* bit per enum call */
  int error_number;
  char prefix[PATH_MAX];
  long after;
  long times;
};

static atomic_long matched; /* matching calls while faults were on */

/* The real functions, resolved once when the library is loaded. */
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_fdatasync)(int);
static int (*real_fsync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned);
static int (*real_link)(const char *, const char *);
static int (*real_linkat)(int, const char *, int, const char *, int);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);

__attribute__((constructor)) static void resolve(void) {
  real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
  real_writev = (ssize_t(*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
  real_pwrite = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
  real_pwrite64 = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
  real_pwritev = (ssize_t(*)(int, const struct iovec *, int, off_t))dlsym(RTLD_NEXT, "pwritev");
  real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  real_rename = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
  real_renameat = (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");
  real_renameat2 = (int (*)(int, const char *, int, const char *, unsigned))dlsym(RTLD_NEXT, "renameat2");
  real_link = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "link");
  real_linkat = (int (*)(int, const char *, int, const char *, int))dlsym(RTLD_NEXT, "linkat");
  real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
  real_open64 = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open64");
  real_openat = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
  real_openat64 = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat64");
  real_creat = (int (*)(const char *, mode_t))dlsym(RTLD_NEXT, "creat");
}

static int parse_errno(const char *v) {
  static const struct { const char *name; int value; } kNames[] = {
      {"ENOSPC", ENOSPC}, {"EIO", EIO}, {"EDQUOT", EDQUOT}, {"EROFS", EROFS}, {"EFBIG", EFBIG}};
  for (size_t i = 0; i < sizeof kNames / sizeof kNames[0]; ++i) {
    if (strcmp(v, kNames[i].name) == 0) return kNames[i].value;
  }
  int n = atoi(v);
  return n > 0 ? n : EIO;
}

static unsigned parse_calls(const char *v) {
  unsigned mask = 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", v);
  for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    for (int c = 0; c < kCalls; ++c) {
      if (strcmp(tok, kCallNames[c]) == 0) mask |= 1u << c;
    }
    if (strcmp(tok, "open") == 0) mask |= 1u << kOpenat;
  }
  return mask;
}

static void apply(struct settings *s, const char *key, const char *value) {
  if (strcmp(key, "calls") == 0) s->calls = parse_calls(value);
  else if (strcmp(key, "errno") == 0) s->error_number = parse_errno(value);
  else if (strcmp(key, "prefix") == 0) snprintf(s->prefix, sizeof s->prefix, "%s", value);
  else if (strcmp(key, "after") == 0) s->after = atol(value);
  else if (strcmp(key, "times") == 0) s->times = atol(value);
}

/* The settings in force, or 0 when faults are off. */
static int faults_on(struct settings *s) {
  static const char *const kKeys[] = {"calls", "errno", "prefix", "after", "times"};
  memset(s, 0, sizeof *s);
  s->error_number = EIO;
  for (size_t i = 0; i < sizeof kKeys / sizeof kKeys[0]; ++i) {
    char name[64];
    snprintf(name, sizeof name, "FAULTINJECT_%s", kKeys[i]);
    for (char *p = name; *p; ++p) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    const char *v = getenv(name);
    if (v) apply(s, kKeys[i], v);
  }
  const char *control = getenv("FAULTINJECT_CONTROL");
  if (control) {
    /* The raw system call: our own openat must not look at itself. */
    int fd = (int)syscall(SYS_openat, AT_FDCWD, control, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      atomic_store(&matched, 0);
      return 0;
    }
    char text[8192];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
      char *eq = strchr(line, '=');
      if (!eq) continue;
      *eq = '\0';
      apply(s, line, eq + 1);
    }
  }
  return s->calls != 0 && s->prefix[0] == '/';
}

/* The path an fd refers to ("" when unknown: a socket, a pipe). */
static void fd_path(int fd, char *out, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, out, size - 1);
  out[n > 0 ? n : 0] = '\0';
}

/* `path` made absolute against `dirfd` (AT_FDCWD: the working directory). */
static void at_path(int dirfd, const char *path, char *out, size_t size) {
  if (path == NULL) {
    out[0] = '\0';
    return;
  }
  if (path[0] == '/') {
    snprintf(out, size, "%s", path);
    return;
  }
  char dir[PATH_MAX];
  if (dirfd == AT_FDCWD) {
    if (getcwd(dir, sizeof dir) == NULL) dir[0] = '\0';
  } else {
    fd_path(dirfd, dir, sizeof dir);
  }
  snprintf(out, size, "%s/%s", dir, path);
}

/* Whether a call of kind `c` on `path` (or `other_path`) fails under `s`;
 * sets errno and reports it when it does. */
static int decide(const struct settings *s, enum call c, const char *path, const char *other_path) {
  const size_t len = strlen(s->prefix);
  const char *hit = NULL;
  if (path && strncmp(path, s->prefix, len) == 0) hit = path;
  else if (other_path && strncmp(other_path, s->prefix, len) == 0) hit = other_path;
  if (hit == NULL) return 0;
  const long n = atomic_fetch_add(&matched, 1);
  if (n < s->after || (s->times > 0 && n >= s->after + s->times)) return 0;
  char line[PATH_MAX + 128];
  int m = snprintf(line, sizeof line, "faultinject: %s %s: %s\n", kCallNames[c], hit, strerror(s->error_number));
  if (m > 0 && real_write) (void)!real_write(2, line, (size_t)m < sizeof line ? (size_t)m : sizeof line - 1);
  errno = s->error_number;
  return 1;
}

/* Faults on and this kind of call chosen: only then are paths looked up. */
static int armed_for(enum call c, struct settings *s) { return faults_on(s) && (s->calls & (1u << c)); }

static int fails_fd(enum call c, int fd) {
  struct settings s;
  if (!armed_for(c, &s)) return 0;
  char path[PATH_MAX];
  fd_path(fd, path, sizeof path);
  return decide(&s, c, path, NULL);
}

static int fails_paths(enum call c, int fromfd, const char *from, int tofd, const char *to) {
  struct settings s;
  if (!armed_for(c, &s)) return 0;
  char a[PATH_MAX], b[PATH_MAX];
  at_path(fromfd, from, a, sizeof a);
  at_path(tofd, to, b, sizeof b);
  return decide(&s, c, a, to ? b : NULL);
}

static int writes(int flags) { return (flags & (O_CREAT | O_WRONLY | O_RDWR | O_TRUNC)) != 0; }

/* --- the intercepted calls ------------------------------------------------ */

ssize_t write(int fd, const void *buf, size_t count) {
  if (fails_fd(kWrite, fd)) return -1;
  return real_write(fd, buf, count);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  if (fails_fd(kWrite, fd)) return -1;
  return real_writev(fd, iov, iovcnt);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  if (fails_fd(kPwrite, fd)) return -1;
  return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
  if (fails_fd(kPwrite, fd)) return -1;
  return real_pwrite64(fd, buf, count, offset);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
  if (fails_fd(kPwrite, fd)) return -1;
  return real_pwritev(fd, iov, iovcnt, offset);
}

int fdatasync(int fd) {
  if (fails_fd(kFdatasync, fd)) return -1;
  return real_fdatasync(fd);
}

int fsync(int fd) {
  if (fails_fd(kFsync, fd)) return -1;
  return real_fsync(fd);
}

int rename(const char *from, const char *to) {
  if (fails_paths(kRename, AT_FDCWD, from, AT_FDCWD, to)) return -1;
  return real_rename(from, to);
}

int renameat(int fromfd, const char *from, int tofd, const char *to) {
  if (fails_paths(kRename, fromfd, from, tofd, to)) return -1;
  return real_renameat(fromfd, from, tofd, to);
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags) {
  if (fails_paths(kRename, fromfd, from, tofd, to)) return -1;
  return real_renameat2(fromfd, from, tofd, to, flags);
}

int link(const char *from, const char *to) {
  if (fails_paths(kLink, AT_FDCWD, from, AT_FDCWD, to)) return -1;
  return real_link(from, to);
}

int linkat(int fromfd, const char *from, int tofd, const char *to, int flags) {
  if (fails_paths(kLink, fromfd, from, tofd, to)) return -1;
  return real_linkat(fromfd, from, tofd, to, flags);
}

/* O_CREAT and O_TMPFILE take a mode argument. */
static mode_t mode_of(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE ? (mode_t)va_arg(ap, unsigned) : 0;
}

static int inject_open(int dirfd, const char *path, int flags) {
  return writes(flags) && fails_paths(kOpenat, dirfd, path, AT_FDCWD, NULL);
}

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_of(flags, ap);
  va_end(ap);
  if (inject_open(AT_FDCWD, path, flags)) return -1;
  return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_of(flags, ap);
  va_end(ap);
  if (inject_open(AT_FDCWD, path, flags)) return -1;
  return real_open64(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_of(flags, ap);
  va_end(ap);
  if (inject_open(dirfd, path, flags)) return -1;
  return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_of(flags, ap);
  va_end(ap);
  if (inject_open(dirfd, path, flags)) return -1;
  return real_openat64(dirfd, path, flags, mode);
}

int creat(const char *path, mode_t mode) {
  if (inject_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC)) return -1;
  return real_creat(path, mode);
}
