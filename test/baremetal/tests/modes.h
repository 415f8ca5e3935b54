/*
 * Layout shared by modes.S and modes.c: where the real-mode thunk is copied below 1 MiB and
 * where it leaves its results, and the software-interrupt vector it uses through the IVT.
 */
#ifndef MODES_H
#define MODES_H

#define REALMODE_BASE	0x7000		/* the thunk runs here: CS = 0, IP = 0x7000 + offset */
#define RM_STACK_TOP	0x7d00
#define RM_RESULTS	0x7e00
#define RM_RES_CR0	(RM_RESULTS + 0x0)	/* CR0 read in real mode */
#define RM_RES_PUSH	(RM_RESULTS + 0x4)	/* bytes one PUSH AX moved SP by */
#define RM_RES_INTS	(RM_RESULTS + 0x8)	/* calls of the IVT handler */
#define RM_RES_INT_IP	(RM_RESULTS + 0xc)	/* IP pushed by INT */
#define RM_RES_INT_CS	(RM_RESULTS + 0x10)	/* CS pushed by INT */
#define RM_RES_AFTER_INT (RM_RESULTS + 0x14)	/* IP of the instruction after INT */
#define RM_SEG_LINEAR	0x7f10		/* written as ES:0x10 with ES = 0x07F1 - 1 */
#define RM_VECTOR	0x30

#endif
