/** Interpreter helpers (placeholder until filled in). */
import type { Helper } from './index.js';
export const X87_HELPERS: Record<string, Helper> = {};
