/** Interpreter helpers (placeholder until filled in). */
import type { Helper } from './index.js';
export const SSE_HELPERS: Record<string, Helper> = {};
