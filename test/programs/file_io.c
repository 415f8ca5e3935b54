/*
 * File system calls in a private temporary directory (mkdtemp under $TMPDIR or /tmp, removed at the end):
 * open/write/read/lseek/pread/pwrite/ftruncate/fstat/rename/unlink/opendir-readdir, plus stdio
 * streams on top of them. Only facts that are the same on every run are printed: sizes, byte
 * checksums, errno names and the sorted directory listing, never the directory's random name,
 * inode numbers or times.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"

static char directory[256];

static void path_in(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", directory, name); }

/* The symbolic name, because strerror's wording differs between glibc and musl. */
static const char *errno_name(void) {
  switch (errno) {
  case EEXIST: return "EEXIST";
  case EBADF: return "EBADF";
  case ENOENT: return "ENOENT";
  default: return strerror(errno);
  }
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list_directory(const char *label) {
  DIR *dir = opendir(directory);
  char *names[32];
  int count = 0;
  for (struct dirent *entry; (entry = readdir(dir)) != NULL;)
    if (count < 32) names[count++] = strdup(entry->d_name);
  closedir(dir);
  qsort(names, (size_t)count, sizeof names[0], compare_names);
  printf("%s:", label);
  for (int i = 0; i < count; i++) {
    printf(" %s", names[i]);
    free(names[i]);
  }
  printf("\n");
}

static void raw_descriptors(void) {
  char path[128];
  static unsigned char block[10000], back[10000];
  path_in(path, sizeof path, "data.bin");
  seed_random(3);
  for (size_t i = 0; i < sizeof block; i++) block[i] = (unsigned char)next_random();
  int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0640);
  ssize_t written = write(fd, block, sizeof block);
  off_t end = lseek(fd, 0, SEEK_CUR);
  off_t middle = lseek(fd, 4321, SEEK_SET);
  ssize_t got = read(fd, back, 100);
  int same = memcmp(back, block + 4321, 100) == 0;
  printf("write %zd end %lld seek %lld read %zd same %d\n", written, (long long)end, (long long)middle, got, same);
  pwrite(fd, "HOLE", 4, 20000); /* past the end: leaves a hole that reads back as zeros */
  struct stat info;
  fstat(fd, &info);
  printf("after pwrite: size %lld regular %d mode %o\n", (long long)info.st_size, S_ISREG(info.st_mode) != 0,
         (unsigned)(info.st_mode & 0777) & ~0022u);
  char hole[8];
  pread(fd, hole, sizeof hole, 15000);
  printf("hole bytes %d%d%d%d, read at end %zd\n", hole[0], hole[1], hole[6], hole[7], pread(fd, hole, 8, 30000));
  ftruncate(fd, 5000);
  off_t size = lseek(fd, 0, SEEK_END);
  lseek(fd, 0, SEEK_SET);
  ssize_t total = 0, chunk;
  uint64_t hash = 0;
  while ((chunk = read(fd, back, 777)) > 0) {
    hash = checksum_bytes(hash, back, (size_t)chunk);
    total += chunk;
  }
  printf("truncated to %lld, read back %zd bytes, checksum %016llx, expected %016llx\n", (long long)size, total,
         (unsigned long long)hash, (unsigned long long)checksum_bytes(0, block, 5000));
  int again = open(path, O_CREAT | O_EXCL | O_RDWR, 0640);
  printf("O_EXCL on existing: %d %s\n", again, errno_name());
  close(fd);
  ssize_t closed_read = read(fd, back, 1);
  printf("read from closed fd: %zd %s\n", closed_read, errno_name());
}

static void streams(void) {
  char path[128];
  path_in(path, sizeof path, "notes.txt");
  FILE *out = fopen(path, "w");
  for (int i = 0; i < 50; i++) fprintf(out, "line %d: %s %.2f\n", i, i % 2 ? "odd" : "even", i / 7.0);
  fclose(out);
  FILE *in = fopen(path, "r");
  char line[128];
  int lines = 0, odd = 0;
  while (fgets(line, sizeof line, in)) {
    lines++;
    odd += strstr(line, "odd") != NULL;
    if (lines == 37) printf("line 37 reads '%.*s'\n", (int)strcspn(line, "\n"), line);
  }
  long position = ftell(in);
  fseek(in, -10, SEEK_END);
  size_t tail = fread(line, 1, sizeof line, in);
  printf("stream: %d lines (%d odd), %ld bytes, last %zu bytes '%.*s'\n", lines, odd, position, tail, (int)tail - 1, line);
  fclose(in);
  FILE *append = fopen(path, "a+");
  fputs("appended\n", append);
  rewind(append);
  int first = fgetc(append);
  fclose(append);
  struct stat info;
  stat(path, &info);
  printf("append: size %lld first char '%c'\n", (long long)info.st_size, first);
}

static void names(void) {
  char from[128], to[128], sub[128];
  path_in(from, sizeof from, "notes.txt");
  path_in(to, sizeof to, "renamed.txt");
  path_in(sub, sizeof sub, "subdir");
  list_directory("before");
  printf("rename %d\n", rename(from, to));
  int old_name = access(from, F_OK);
  printf("access old name: %d %s\n", old_name, errno_name());
  int made = mkdir(sub, 0755);
  int made_again = mkdir(sub, 0755);
  printf("mkdir %d, again %d %s\n", made, made_again, errno_name());
  list_directory("after");
  path_in(from, sizeof from, "data.bin");
  int unlinked_data = unlink(from);
  int unlinked_notes = unlink(to);
  int removed_sub = rmdir(sub);
  printf("unlink %d %d, rmdir %d\n", unlinked_data, unlinked_notes, removed_sub);
  list_directory("emptied");
}

int main(void) {
  /* TMPDIR lets the test harness give each run a scratch area it removes afterwards */
  const char *temporary = getenv("TMPDIR");
  snprintf(directory, sizeof directory, "%s/svmjit-file-io-XXXXXX", temporary && *temporary ? temporary : "/tmp");
  if (!mkdtemp(directory)) {
    perror("mkdtemp");
    return 1;
  }
  raw_descriptors();
  streams();
  names();
  int removed = rmdir(directory);
  printf("removed temporary directory: %d\n", removed);
  return 0;
}
