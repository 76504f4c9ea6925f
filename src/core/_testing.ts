/**
 * @module
 * Test helper: runs text-form ops on a core backend and returns outcome texts.
 */
import { mergeConfig } from "../trace/config.ts";
import { formatOutcome, parseOp } from "../trace/text.ts";
import type { ConfigInput } from "../trace/types.ts";
import type { BugName } from "./bugs.ts";
import { CoreBackend } from "./mod.ts";

/** A core backend for `config` with `inject`ed bugs (catalogue names: a typo is a type error). */
export function newCore(config: ConfigInput = {}, inject: readonly BugName[] = []): CoreBackend {
  return new CoreBackend(mergeConfig(config), { inject });
}

/** Runs each op line; returns each outcome as text. Fails on a broken invariant. */
export function runLines(core: CoreBackend, lines: readonly string[], audit = true): string[] {
  return lines.map((line) => {
    const out = formatOutcome(core.step(parseOp(line)));
    if (audit) {
      const broken = core.audit();
      if (broken.length > 0) throw new Error(`audit after "${line}": ${broken.join("; ")}`);
    }
    return out;
  });
}

/**
 * Page tables used by most tests: slot 0 maps gpa 0..256 KiB; PML4 at 0x1000, PDPT at
 * 0x2000, PD at 0x3000, PT at 0x4000; gva 0x0 -> gpa 0x5000, gva 0x1000 -> gpa 0x6000.
 */
export const BASE_SETUP: readonly string[] = [
  "slot 0 gpa=0x0 pages=64 hva=0x100000000",
  "write 0x1000 0x2007",
  "write 0x2000 0x3007",
  "write 0x3000 0x4007",
  "write 0x4000 0x5067",
  "write 0x4008 0x6067",
  "write 0x5000 0x1111",
  "write 0x6000 0x2222",
  "cr3 0x1000",
];
