/* aarch64 smoke test of the system-call library (a Raspberry Pi is aarch64): run under
 * qemu-aarch64 with the cross-built library preloaded by tests/syscalls/test_aarch64.py.
 * argv[1] is a scratch directory. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
int main(int argc, char **argv) {
    if (argc != 2) return 64;
    char root[4096], path[4200], records[4200];
    snprintf(root, sizeof root, "%s/root", argv[1]);
    snprintf(records, sizeof records, "%s/records.jsonl", argv[1]);
    int (*start)(const char *, int, const char *, long) = dlsym(RTLD_DEFAULT, "edgeio_trace_start");
    int (*stop)(void) = dlsym(RTLD_DEFAULT, "edgeio_trace_stop");
    int (*arm)(int, const char *, int, long, long, long, double, unsigned long long, int, int, long long, double, double, double) = dlsym(RTLD_DEFAULT, "edgeio_arm");
    if (!start || !stop || !arm) { puts("library not loaded"); return 2; }
    mkdir(root, 0755);
    int rec = open(records, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (start(root, rec, "", 0) != 0) { puts("start failed"); return 3; }
    snprintf(path, sizeof path, "%s/a.tmp", root);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, "hello", 5);
    pwrite(fd, "J", 1, 0);
    fsync(fd);
    close(fd);
    char target[4200];
    snprintf(target, sizeof target, "%s/a", root);
    rename(path, target);
    int dfd = open(root, O_RDONLY | O_DIRECTORY);
    fsync(dfd);
    close(dfd);
    stop();
    int slot = arm(1, root, 0, 0, 0, 0, -1.0, 0, 0, 0, 3, 0.0, -1.0, -1.0);
    snprintf(path, sizeof path, "%s/b", root);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ssize_t n1 = write(fd, "12345", 5);
    ssize_t n2 = write(fd, "6", 1);
    printf("slot=%d first=%zd second=%zd errno=%d\n", slot, n1, n2, n2 < 0 ? errno : 0);
    close(fd);
    return 0;
}
