/**
 * @module
 * The semantic signature of a divergence (DESIGN.md section 6): area, op kind, the
 * kind of outcome the backend returned and the kinds the reference permitted, plus the
 * invariant name for invariant breaks and "crash" for crashes, e.g.
 * `mmu/access: core=value, permitted={mmio}`. The same bug found again, from another
 * seed or with other values, has the same signature; the finding id is the first 16
 * hex digits of the signature's SHA-256 (`node:crypto`, synchronous, so workers and
 * the main process compute it alike).
 */
import { createHash } from "node:crypto";
import type { BackendName } from "../src/backend.ts";
import type { Area } from "../src/corpus/types.ts";
import type { Divergence } from "../src/diff.ts";
import { outcomeKind } from "../src/trace/outcome.ts";
import type { OpKind } from "../src/trace/types.ts";

/** The area an op kind exercises. */
export function opArea(kind: OpKind): Area {
  switch (kind) {
    case "slot":
    case "discard":
    case "dirtylog":
    case "age":
      return "memslot";
    case "wrmsr":
    case "rdmsr":
    case "rdpmc":
    case "filter":
    case "events":
    case "pmis":
      return "pmu";
    default:
      return "mmu";
  }
}

/**
 * The name of a broken invariant: the text before its first colon, so that details
 * (gfns, spte values) do not split one invariant into many findings.
 */
export function invariantName(message: string): string {
  const colon = message.indexOf(":");
  return (colon < 0 ? message : message.slice(0, colon)).trim();
}

/** The semantic signature of a divergence found on `backend`. */
export function signatureOf(d: Divergence, backend: BackendName): string {
  const head = `${opArea(d.op.op)}/${d.op.op}:`;
  if (d.kind === "crash") return `${head} ${backend}=crash`;
  if (d.kind === "invariant") {
    return `${head} invariant ${invariantName(d.invariant ?? "unknown")}`;
  }
  const permitted = [...new Set(d.permitted.map((p) => outcomeKind(p.outcome)))].sort();
  return `${head} ${backend}=${outcomeKind(d.observed)}, permitted={${permitted.join(",")}}`;
}

/** The finding id of a signature: the first 16 hex digits of its SHA-256. */
export function signatureId(signature: string): string {
  return createHash("sha256").update(signature).digest("hex").slice(0, 16);
}
