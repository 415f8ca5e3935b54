/*
 * Layout shared by legacy.S and legacy.c: the register block a 32-bit snippet runs with, the
 * record of an exception taken in legacy protected mode, and the extra descriptors the test
 * puts in the GDT's spare slots.
 */
#ifndef LEGACY_H
#define LEGACY_H

#include "asm-defs.h"

/* struct regs32 (legacy.c): in, and out after the snippet (ESP is neither). */
#define R32_EAX		0
#define R32_ECX		4
#define R32_EDX		8
#define R32_EBX		12
#define R32_ESP		16
#define R32_EBP		20
#define R32_ESI		24
#define R32_EDI		28
#define R32_EFLAGS	32

/* struct fault32 (legacy.c): what the legacy-mode exception stubs record. */
#define F32_VECTOR	0
#define F32_ERROR	4
#define F32_EIP		8
#define F32_CS		12
#define F32_EFLAGS	16
#define F32_ESP		20
#define F32_SS		24
#define F32_CR2		28

/*
 * GDT spare slots (GDT_SPARE_SEL onwards). The LDT and call-gate descriptors take two slots
 * each: in long mode system descriptors are 16 bytes, and the second slot (zero) is their
 * upper half; in legacy mode the second slot reads as a null (type 0) descriptor.
 */
#define LDT_SEL		0x60	/* + 0x68 */
#define CALLGATE_SEL	0x70	/* + 0x78, DPL 3 */
#define STACK16_SEL	0x80	/* 16-bit data (B = 0), base STACK16_BASE, limit 64 KiB */
#define XCODE_SEL	0x88	/* execute-only code, DPL 0, G = 1, limit[19:16] = 0xF */
#define DATA_NP_SEL	0x90	/* not present data, DPL 0, limit 0x1234 */
#define RODATA_SEL	0x98	/* read-only data, DPL 0, limit 0xABCD */

#define STACK16_BASE	0x20000

#define MSR_SYSENTER_CS		0x174
#define MSR_SYSENTER_ESP	0x175
#define MSR_SYSENTER_EIP	0x176

/* LDT entries (TI = 1). */
#define LDT_DATA3	0x04	/* writable data, DPL 3, G = 1, limit 0x0FFFF -> 0x0FFFFFFF */
#define LDT_CONFORMING	0x0c	/* conforming readable code, DPL 0 */
#define LDT_TASKGATE	0x14	/* task gate (legacy mode only for LAR) */
#define LDT_CALLGATE16	0x1c	/* 16-bit call gate (legacy mode only for LAR) */
#define LDT_ENTRIES	4

#endif
