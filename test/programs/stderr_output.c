/*
 * Output on both standard streams: unbuffered stderr (fprintf, perror with a real errno, a raw
 * write(2)) interleaved with buffered stdout, and a non-zero status from main's return. The test
 * compares each stream on its own, so the relative order of the two is not part of the check.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  printf("stdout line 1\n");
  fprintf(stderr, "stderr: warning %d of %d\n", 1, 2);
  if (open("/nonexistent-svmjit-test/file", O_RDONLY) < 0) perror("open /nonexistent-svmjit-test/file");
  errno = EACCES;
  fprintf(stderr, "strerror(EACCES): %s\n", strerror(EACCES));
  static const char raw[] = "raw write to fd 2\n";
  write(2, raw, sizeof raw - 1);
  printf("stdout line 2\n");
  fputs("stderr: done\n", stderr);
  return 5;
}
