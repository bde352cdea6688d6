// The floor: the syscalls each loop-lock operation needs, with nothing
// around them, timed one operation at a time with CLOCK_MONOTONIC (the clock
// Node's process.hrtime uses, so handoff timestamps compare across
// processes). It speaks the same line protocol as runner.js.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static char record[512];
static size_t record_len;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *path) {
  fprintf(stderr, "floor: %s '%s': %s\n", what, path, strerror(errno));
  exit(1);
}

// The same record loop-lock writes (serde_json's to_string_pretty layout),
// built once: the floor measures syscalls, not formatting.
static void make_record(const char *prompt) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  char started[32];
  strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  record_len = (size_t)snprintf(record, sizeof record,
                                "{\n  \"pid\": %d,\n  \"started\": \"%s\",\n  \"prompt\": \"%s\"\n}",
                                (int)getpid(), started, prompt);
}

// open, flock(LOCK_EX|LOCK_NB), pwrite, ftruncate, close
static void uncontended(const char *path) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) die("open", path);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) die("flock", path);
  if (pwrite(fd, record, record_len, 0) != (ssize_t)record_len) die("pwrite", path);
  if (ftruncate(fd, (off_t)record_len) < 0) die("ftruncate", path);
  close(fd);
}

// The Rust reference's order: open, flock, ftruncate(0), write, fsync, close
static void reference_order(const char *path) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) die("open", path);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) die("flock", path);
  if (ftruncate(fd, 0) < 0) die("ftruncate", path);
  if (write(fd, record, record_len) != (ssize_t)record_len) die("write", path);
  if (fsync(fd) < 0) die("fsync", path);
  close(fd);
}

// open, flock fails, pread the holder's record, close
static void contended(const char *path) {
  char buf[4096];
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) die("open", path);
  if (flock(fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) die("flock (expected EWOULDBLOCK)", path);
  if (pread(fd, buf, sizeof buf, 0) <= 0) die("pread", path);
  close(fd);
}

// open, flock(LOCK_SH|LOCK_NB), close
static void is_locked(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open", path);
  if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno != EWOULDBLOCK) die("flock", path);
  close(fd);
}

// open, flock(LOCK_SH|LOCK_NB) fails, pread, close
static void status_held(const char *path) {
  char buf[4096];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open", path);
  if (flock(fd, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK) die("flock (expected EWOULDBLOCK)", path);
  if (pread(fd, buf, sizeof buf, 0) <= 0) die("pread", path);
  close(fd);
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f == NULL || fscanf(f, "%ld %ld", &size, &resident) != 2) die("read", "/proc/self/statm");
  fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int open_fds(void) {
  DIR *dir = opendir("/proc/self/fd");
  if (dir == NULL) die("opendir", "/proc/self/fd");
  int n = 0;
  while (readdir(dir) != NULL) n++;
  closedir(dir);
  return n - 3;  // ".", ".." and the directory's own descriptor
}

static void run_batch(void (*op)(const char *), const char *path, long count) {
  printf("samples");
  for (long i = 0; i < count; i++) {
    uint64_t start = now_ns();
    op(path);
    uint64_t end = now_ns();
    printf(" %llu", (unsigned long long)(end - start));
  }
  printf("\n");
}

int main(void) {
  make_record("implement the benchmark");
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  printf("ready {\"pid\":%d}\n", (int)getpid());
  fflush(stdout);

  char line[8192], cmd[64], path[4096];
  long count = 0;
  int held_fd = -1;
  while (fgets(line, sizeof line, stdin) != NULL) {
    int fields = sscanf(line, "%63s %4095s %ld", cmd, path, &count);
    if (fields < 1) continue;
    if (strcmp(cmd, "uncontended") == 0) {
      run_batch(uncontended, path, count);
    } else if (strcmp(cmd, "reference") == 0) {
      run_batch(reference_order, path, count);
    } else if (strcmp(cmd, "contended") == 0) {
      run_batch(contended, path, count);
    } else if (strcmp(cmd, "isLockedFree") == 0 || strcmp(cmd, "isLockedHeld") == 0) {
      run_batch(is_locked, path, count);
    } else if (strcmp(cmd, "statusHeld") == 0) {
      run_batch(status_held, path, count);
    } else if (strcmp(cmd, "hold") == 0) {
      // Holds the lock (blocking if need be) with the record written.
      held_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (held_fd < 0) die("open", path);
      if (flock(held_fd, LOCK_EX) < 0) die("flock", path);
      if (pwrite(held_fd, record, record_len, 0) != (ssize_t)record_len) die("pwrite", path);
      if (ftruncate(held_fd, (off_t)record_len) < 0) die("ftruncate", path);
      printf("held\n");
    } else if (strcmp(cmd, "release") == 0) {
      uint64_t start = now_ns();
      flock(held_fd, LOCK_UN);
      close(held_fd);
      held_fd = -1;
      printf("released %llu\n", (unsigned long long)start);
    } else if (strcmp(cmd, "wait") == 0 || strcmp(cmd, "waitClaim") == 0) {
      held_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (held_fd < 0) die("open", path);
      struct stat opened, current;
      if (fstat(held_fd, &opened) < 0) die("fstat", path);
      printf("waiting\n");
      fflush(stdout);
      if (flock(held_fd, LOCK_EX) < 0) die("flock", path);
      if (strcmp(cmd, "waitClaim") == 0) {
        // What a waiter must do before it may say it holds the lock with
        // its record written, as acquire() does: check that the path still
        // names the locked inode (lstat), then write the record with a NUL
        // first byte and the real one last (see WriteRecord in
        // native/lock_core.h), then mark it as the holder's with an OFD
        // lock on one byte past 2^40 (see MarkHolder in
        // native/posix/lock_owner.cc). The record is the same length as
        // the holder's, so no ftruncate, as in loop-lock.
        if (lstat(path, &current) < 0) die("lstat", path);
        if (current.st_ino != opened.st_ino || current.st_dev != opened.st_dev) die("identity", path);
        static const char writing = '\0';
        struct iovec parts[2] = {{(void *)&writing, 1}, {record + 1, record_len - 1}};
        if (pwritev(held_fd, parts, 2, 0) != (ssize_t)record_len) die("pwritev", path);
        if (pwrite(held_fd, record, 1, 0) != 1) die("pwrite", path);
        struct flock mark = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                             .l_start = (off_t)((1ULL << 40) + (unsigned)getpid()), .l_len = 1};
        if (fcntl(held_fd, F_OFD_SETLK, &mark) < 0) die("fcntl(F_OFD_SETLK)", path);
      }
      uint64_t acquired = now_ns();
      printf("acquired %llu\n", (unsigned long long)acquired);
    } else if (strcmp(cmd, "memory") == 0) {
      long warmup = count / 5 > 1000 ? count / 5 : 1000;
      for (long i = 0; i < warmup; i++) uncontended(path);
      int fds_before = open_fds();
      printf("memory {\"rssCheckpointsKiB\":[%ld", rss_kib());
      uint64_t start = now_ns();
      for (long part = 0; part < 10; part++) {
        for (long i = count * part / 10; i < count * (part + 1) / 10; i++) uncontended(path);
        printf(",%ld", rss_kib());
      }
      double seconds = (double)(now_ns() - start) / 1e9;
      printf("],\"fdsBefore\":%d,\"fdsAfter\":%d,\"seconds\":%.3f}\n", fds_before, open_fds(), seconds);
    } else {
      printf("error unknown command %s\n", cmd);
    }
    fflush(stdout);
  }
  return 0;
}
