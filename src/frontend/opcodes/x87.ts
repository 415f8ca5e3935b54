/** Opcode table rows (placeholder until filled in). */
export const X87_ROWS: string[] = [];
