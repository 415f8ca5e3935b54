/** Opcode table rows (placeholder until filled in). */
export const SSE_ROWS: string[] = [];
