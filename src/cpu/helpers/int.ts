/** Interpreter helpers (placeholder until filled in). */
import type { Helper } from './index.js';
export const INT_HELPERS: Record<string, Helper> = {};
