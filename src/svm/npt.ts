/**
 * Nested paging (AMD NPT) for the SVM runtime, spec/svm.md §7: the nested-table context an L2
 * guest's walks go through, the #VMEXIT(NPF) its faults raise with EXITINFO1 as §7.4 lays it
 * out, and VMRUN's nested-paging consistency checks C17-C19 (§5.3, G_PAT per §7.6).
 *
 * The two-dimensional walk itself is paging.ts's walker run at both levels; this file only
 * says what the nested level is (N_CR3 in the format of L1's paging mode at VMRUN, §7.2) and
 * what its faults mean. The machine's MMU owns one NestedPaging per CPU, loads it at VMRUN
 * and drops it at #VMEXIT (MachineMemory.setNestedPaging).
 */
import { PfErr } from '../cpu/exceptions.js';
import { Access, MAXPHYADDR, type NestedContext, type PagingContext } from '../machine/paging.js';
import { VmExit } from './intercept.js';
import { ExitCode } from './vmcb.js';

/** misc_ctl (VMCB 0x090) bits (§3.1). */
export const enum MiscCtl {
  /** Nested paging for this guest. */
  NP_ENABLE = 1,
}

/** EXITINFO1 bits of #VMEXIT(NPF) (§7.4). */
export const enum NpfInfo {
  /** The nested entry was present: a protection or reserved-bit fault. */
  P = 0x1,
  /** A write (every guest page-table access counts as one). */
  RW = 0x2,
  /** A user access: every nested access is one. */
  US = 0x4,
  /** A reserved bit was set in a nested entry. */
  RSVD = 0x8,
  /** An instruction fetch, reported only with L1 EFER.NXE or CR4.SMEP. */
  ID = 0x10,
  /** Bit 32: the fault hit the translation of the access's final guest-physical address. */
  FINAL = 0x1_0000_0000,
  /** Bit 33: the fault hit the translation of a guest page-table entry's address. */
  GUEST_TABLE = 0x2_0000_0000,
}

/** L1's paging registers at VMRUN and vmcb12's N_CR3: what the nested tables are. */
export interface NestedPagingSetup {
  /** N_CR3: the nested root table (an L1-physical address, checked legal by C17). */
  nCr3: number;
  /** L1's CR0, CR4 and EFER (low 32 bits) when it executed VMRUN. */
  cr0: number;
  cr4: number;
  efer: number;
}

const CR0_PG = 1 << 31;
const CR4_SMEP = 1 << 20;
const EFER_NXE = 1 << 11;

/** One CPU's nested tables; loaded at each VMRUN with NP_ENABLE, so nothing is allocated per VMRUN. */
export class NestedPaging implements NestedContext {
  /**
   * The nested tables as paging.ts walks them. KVM builds the nested MMU from L1's CR4 and
   * EFER with CR0.PG forced on; CR0.WP does not matter since every nested access is a user access.
   */
  readonly tables: PagingContext = { cr0: 0, cr3: 0, cr4: 0, efer: 0, ac: false, pdptes: new Uint32Array(8), nested: null };

  load(setup: NestedPagingSetup): this {
    const t = this.tables;
    t.cr3 = setup.nCr3;
    t.cr0 = setup.cr0 | CR0_PG;
    t.cr4 = setup.cr4;
    t.efer = setup.efer;
    return this;
  }

  fault(cause: number, access: number, gpa: number, guestTable: boolean): never {
    throw new VmExit(ExitCode.NPF, npfExitInfo1(cause, access, guestTable, this.tables.cr4, this.tables.efer), gpa);
  }
}

/**
 * EXITINFO1 of an NPF (§7.4) from a nested walk's fault: `cause` as for a #PF (0, P, P|RSVD),
 * `access` the nested access's Access bits, `guestTable` whether a guest table entry's address
 * was being translated; L1's CR4 and EFER decide whether a fetch is reported.
 */
export function npfExitInfo1(cause: number, access: number, guestTable: boolean, l1Cr4: number, l1Efer: number): number {
  let info = NpfInfo.US;
  if (cause & PfErr.P) info |= NpfInfo.P;
  if (cause & PfErr.RSVD) info |= NpfInfo.RSVD;
  if (access & Access.WRITE) info |= NpfInfo.RW;
  if (access & Access.FETCH && (l1Efer & EFER_NXE || l1Cr4 & CR4_SMEP)) info |= NpfInfo.ID;
  // Bits 32 and 33 are beyond int32 bit operations: add them.
  return info + (guestTable ? NpfInfo.GUEST_TABLE : NpfInfo.FINAL);
}

/**
 * VMRUN's nested-paging consistency checks, for a vmcb12 whose NP_ENABLE is 1 (with NP
 * advertised): false when one fails, which makes VMRUN #VMEXIT(VMEXIT_INVALID) (§5.3, §5.4).
 * 64-bit fields come as their 32-bit halves so no bit is lost.
 *  - C17: N_CR3 is a legal physical address (no bit at or above MAXPHYADDR);
 *  - C18: L1's CR0.PG is 1;
 *  - C19: every byte of G_PAT is a supported memory type.
 */
export function nestedPagingConsistent(nCr3Lo: number, nCr3Hi: number, l1Cr0: number, gPatLo: number, gPatHi: number): boolean {
  if (nCr3Hi >>> (MAXPHYADDR - 32) !== 0) return false; // C17
  if ((l1Cr0 & CR0_PG) === 0) return false; // C18
  return validPat(gPatLo, gPatHi); // C19
}

/** Memory types a PAT entry may hold: UC (0), WC (1), WT (4), WP (5), WB (6), UC- (7), one bit each. */
const PAT_TYPES = 0b1111_0011;

/** Whether every byte of a PAT value (as halves) is a supported memory type (§7.6, the IA32_PAT rule). */
export function validPat(lo: number, hi: number): boolean {
  for (let i = 0; i < 64; i += 8) {
    const type = ((i < 32 ? lo : hi) >>> (i & 31)) & 0xff;
    if (type > 7 || ((PAT_TYPES >>> type) & 1) === 0) return false;
  }
  return true;
}
