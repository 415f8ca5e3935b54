/*
 * A program that ends with exit(3) after registering atexit handlers: the status must reach the
 * parent unchanged and the handlers must run (in reverse order) and flush buffered output first.
 */
#include <stdio.h>
#include <stdlib.h>

static void first_registered(void) { printf("atexit: registered first, runs last\n"); }
static void second_registered(void) { printf("atexit: registered second, runs first\n"); }

int main(void) {
  atexit(first_registered);
  atexit(second_registered);
  printf("exiting with status 3\n"); /* stays in the stdio buffer until exit flushes it */
  exit(3);
}
