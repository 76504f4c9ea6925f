/**
 * @module
 * A deliberately buggy backend for the fuzzer's own tests: the reference with two
 * planted bugs whose signatures are known, so that the campaign, the shrinker, the
 * minimizer and the corpus can be tested without the core.
 * - after any memslot deletion, an access the reference answers with an MMIO exit
 *   returns `value 0` (a stale-MMIO-style bug): `mmu/access: core=value, permitted={mmio}`;
 * - RDPMC with ECX bit 31 set returns `value 0` instead of #GP:
 *   `pmu/rdpmc: core=value, permitted={gp}`.
 */
import type { Backend, BackendFactory } from "../../src/backend.ts";
import { ReferenceBackend } from "../../src/reference/mod.ts";
import type { Config, Op, Outcome } from "../../src/trace/types.ts";

class BuggyBackend implements Backend {
  readonly name = "core" as const;
  readonly #ref: ReferenceBackend;
  #deleted = false;
  /** Counts like a core's coverage: event 0 = a slot deletion, 1 = an RDPMC. */
  readonly coverage = new Uint32Array(4);

  constructor(config: Config) {
    this.#ref = new ReferenceBackend(config);
  }

  step(op: Op): Outcome {
    const outcome = this.#ref.step(op);
    if (op.op === "slot" && op.pages === 0 && "errno" in outcome && outcome.errno === 0) {
      this.#deleted = true;
      this.coverage[0]!++;
    }
    if (op.op === "access" && this.#deleted && "mmio" in outcome) return { value: 0n };
    if (op.op === "rdpmc") {
      this.coverage[1]!++;
      if ((op.ecx & 0x8000_0000) !== 0 && "gp" in outcome) return { value: 0n };
    }
    if (op.op === "filter") this.coverage[2]!++;
    return outcome;
  }

  close(): void {}
}

/** The buggy backend's factory (it calls itself "core"). */
export const buggyFactory: BackendFactory = {
  name: "core",
  available: () => null,
  create: (config) => new BuggyBackend(config),
};
