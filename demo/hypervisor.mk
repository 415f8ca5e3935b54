# The demo hypervisor's build rules, read after test/baremetal's Makefile
# (make -C test/baremetal -f Makefile -f demo/hypervisor.mk; demo/build-hypervisor.sh does it), so
# the hypervisor is compiled and linked exactly like the bare-metal test images: the same CFLAGS,
# runtime objects and link map. OUT is where hypervisor.flat goes; objects go under BUILD.
#
# The image carries "demo-sources-sha256:" and the first 16 hex digits of the SHA-256 of its own
# sources (DEMO_SRCS, concatenated in this order), so a test can tell a committed image that no
# longer matches them.

DEMO_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
DEMO_SRCS := $(DEMO_DIR)/hypervisor.c $(DEMO_DIR)/workload.h
DEMO_STAMP := $(shell cat $(DEMO_SRCS) | sha256sum | cut -c1-16)

$(OUT)/hypervisor.flat: $(BUILD)/demo/hypervisor.elf
	$(OBJCOPY) --strip-debug -O elf32-i386 $< $@

$(BUILD)/demo/hypervisor.elf: $(BUILD)/demo/hypervisor.c.o $(LIB_OBJS) lib/runtime.ld
	$(LD) $(LDFLAGS) -o $@ $(filter %.o,$^)

$(BUILD)/demo/hypervisor.c.o: $(DEMO_SRCS) lib/runtime.h lib/asm-defs.h lib/svm.h | $(BUILD)/demo
	$(CC) $(CFLAGS) -DDEMO_STAMP='"$(DEMO_STAMP)"' -c $< -o $@

$(BUILD)/demo:
	mkdir -p $@
