// The floor of the file-lock row (bench/file-lock.js): a shared try and
// release as FileLock.tryShared() + release() make it, with nothing around
// the syscalls, timed one at a time with CLOCK_MONOTONIC.
//
//   shared <lockPath> <count> -> samples <ns> <ns> ...
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// open(O_RDWR|O_CREAT|O_CLOEXEC), flock(LOCK_SH|LOCK_NB), close
static void shared(const char *path) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0 || flock(fd, LOCK_SH | LOCK_NB) < 0) {
    fprintf(stderr, "file-lock-floor: '%s': %s\n", path, strerror(errno));
    exit(1);
  }
  close(fd);
}

int main(void) {
  char line[8192], path[4096];
  long count;
  setvbuf(stdout, NULL, _IOFBF, 1 << 20);
  printf("ready {}\n");
  fflush(stdout);
  while (fgets(line, sizeof line, stdin) != NULL) {
    if (sscanf(line, "shared %4095s %ld", path, &count) != 2 || count < 1) {
      printf("error bad command\n");
      fflush(stdout);
      continue;
    }
    shared(path);
    fputs("samples", stdout);
    for (long i = 0; i < count; i++) {
      const uint64_t start = now_ns();
      shared(path);
      printf(" %llu", (unsigned long long)(now_ns() - start));
    }
    putchar('\n');
    fflush(stdout);
  }
  return 0;
}
