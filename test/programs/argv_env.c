/*
 * What the kernel hands a new process: argc/argv (including empty and multi-byte arguments), the
 * environment (only variables named PROGTEST_*, in envp order, since the rest belongs to whoever
 * runs the test) and a few auxiliary-vector facts that do not vary between runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

extern char **environ;

int main(int argc, char **argv, char **envp) {
  printf("argc %d\n", argc);
  for (int i = 0; i < argc; i++) printf("argv[%d] = '%s' (%zu bytes)\n", i, argv[i], strlen(argv[i]));
  printf("argv[argc] is NULL: %d\n", argv[argc] == NULL);
  int environment_size = 0;
  for (char **e = envp; *e; e++) {
    environment_size++;
    if (strncmp(*e, "PROGTEST_", 9) == 0) printf("env %s\n", *e);
  }
  printf("environ matches envp: %d, getenv PROGTEST_SPACES '%s', unset variable %s\n", environ == envp, getenv("PROGTEST_SPACES"),
         getenv("PROGTEST_NEVER_SET") ? "set" : "missing");
  printf("auxv: page size %lu, secure %lu, has random bytes %d, entry nonzero %d\n", getauxval(AT_PAGESZ), getauxval(AT_SECURE),
         getauxval(AT_RANDOM) != 0, getauxval(AT_ENTRY) != 0);
  setenv("PROGTEST_ADDED", "yes", 1);
  unsetenv("PROGTEST_ONE");
  printf("after setenv/unsetenv: %s %s\n", getenv("PROGTEST_ADDED"), getenv("PROGTEST_ONE") ? "still set" : "gone");
  return 0;
}
