/**
 * @module
 * `deno task export FINDING.json|ID|TRACE.json [--format c|selftest] [--out FILE]`: writes
 * a standalone reproducer (src/export/): one C file that runs the trace on /dev/kvm and
 * judges every op against the reference's permitted outcomes embedded in it, or the same
 * as a KVM selftest. Exit 0 when written, 2 for bad input or an op the exporter cannot
 * emit (with `--skip-unsupported` such ops are left out, as replay leaves them out).
 *
 * Also {@linkcode exportFindingC}, the dashboard's `/findings/:id/repro.c` hook.
 */
import {
  atomicWriteText,
  findingsDir,
  isFindingId,
  parseFindingFile,
  readFinding,
} from "../../src/corpus/store.ts";
import type { Finding } from "../../src/corpus/types.ts";
import {
  exportFinding,
  ExportRefusal,
  exportTrace,
  type FindingTrace,
} from "../../src/export/mod.ts";
import type { ExportOptions, ExportResult } from "../../src/export/mod.ts";
import { parseTrace } from "../../src/trace/parse.ts";
import { signatureOf } from "../campaign/identity.ts";
import {
  args,
  checkOutFlag,
  type FlagSpecs,
  oneArgument,
  readInputFile,
  SHARED_FLAGS,
  UsageError,
} from "./usage.ts";

export const EXPORT_USAGE = `Usage:
  deno task export FINDING.json|ID|TRACE.json [--format c|selftest] [--out FILE] [--trace minimized|full] [--corpus DIR] [--skip-unsupported] [--no-kvm]`;

const EXPORT_HELP_HEAD = `${EXPORT_USAGE}

Writes a finding or a trace as a standalone reproducer for /dev/kvm: the VM, memslots,
page tables and guest code of the trace's ops, and the reference's permitted outcomes
embedded, compared op by op.`;

const EXPORT_NOTES =
  `The reproducer exits 0 when every op agrees, 1 when it reproduces, 3 when inconclusive,
4 when it cannot run here.`;

/** `export`'s flags. */
export const EXPORT_FLAGS = {
  format: {
    type: "string",
    value: "c|selftest",
    help: "c (default): one C file, libc and <linux/kvm.h> only (cc -O2 -o repro repro.c); " +
      "selftest: the same as a test for tools/testing/selftests/kvm (builds in a kernel tree)",
  },
  out: { type: "string", value: "FILE", help: "write it here (default stdout)" },
  trace: {
    type: "string",
    value: "minimized|full",
    help: "which trace of a finding (default minimized)",
  },
  corpus: SHARED_FLAGS.lookupCorpus,
  "skip-unsupported": {
    type: "boolean",
    help: "leave out ops the kvm backend cannot run, as replay does",
  },
  "no-kvm": {
    type: "boolean",
    help: "do not run the trace on /dev/kvm at export time (the canonical branches are embedded)",
  },
} as const satisfies FlagSpecs;

const signature: NonNullable<ExportOptions["signature"]> = (d, trace) =>
  signatureOf(d, "kvm", trace.config);

/** The dashboard's hook: a finding's minimized trace as `--format c`, unsupported ops left out. */
export function exportFindingC(finding: Finding): string {
  return exportFinding(finding, "minimized", {
    format: "c",
    skipUnsupported: true,
    signature,
    command: "the shadowfuzz dashboard (/findings/:id/repro.c)",
  }).text;
}

/** A finding (by id in `corpus`, or a finding file) or a trace file. */
async function load(
  target: string,
  corpus: string,
): Promise<{ finding: Finding } | { trace: string }> {
  if (isFindingId(target)) {
    let f: Finding | null;
    try {
      f = await readFinding(corpus, target);
    } catch (e) {
      throw new UsageError(`Cannot read finding ${target}: ${(e as Error).message}`);
    }
    if (f === null) throw new UsageError(`No finding ${target} in ${findingsDir(corpus)}`);
    return { finding: f };
  }
  const text = readInputFile(target, "trace or finding");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${target}: Cannot parse JSON: ${(e as Error).message}`);
  }
  if (typeof json === "object" && json !== null && "signature" in json) {
    try {
      return { finding: parseFindingFile(text, target) };
    } catch (e) {
      throw new UsageError(`${target}: ${(e as Error).message}`);
    }
  }
  return { trace: text };
}

/** `export`. */
export async function cmdExport(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, EXPORT_FLAGS, EXPORT_HELP_HEAD, EXPORT_NOTES);
  const target = oneArgument(positionals, "export", "FINDING.json, ID or TRACE.json", EXPORT_USAGE);
  const format = values.format ?? "c";
  if (format !== "c" && format !== "selftest") {
    throw new UsageError(`--format must be c or selftest, got ${JSON.stringify(format)}`);
  }
  const which = values.trace ?? "minimized";
  if (which !== "minimized" && which !== "full") {
    throw new UsageError(`--trace must be minimized or full, got ${JSON.stringify(which)}`);
  }
  if (values.corpus === "") throw new UsageError("--corpus must not be empty");
  if (values.out !== undefined) await checkOutFlag(values.out);
  const corpus = values.corpus ?? "corpus";
  const loaded = await load(target, corpus);
  if ("trace" in loaded && values.trace !== undefined) {
    throw new UsageError(`--trace applies to findings only; ${target} is a trace`);
  }
  const options: ExportOptions = {
    format,
    skipUnsupported: values["skip-unsupported"] ?? false,
    kvm: !(values["no-kvm"] ?? false),
    signature,
    command: `deno task export ${[target, ...argv.filter((a) => a !== target)].join(" ")}`,
  };
  let result: ExportResult;
  try {
    if ("finding" in loaded) {
      if (loaded.finding.inject !== undefined) {
        console.error(
          `note: ${loaded.finding.id} was found with the injected bug ${loaded.finding.inject}, ` +
            "which the real KVM does not have",
        );
      }
      result = exportFinding(loaded.finding, which as FindingTrace, options);
    } else {
      let trace;
      try {
        trace = parseTrace(loaded.trace);
      } catch (e) {
        throw new UsageError(`${target}: ${(e as Error).message}`);
      }
      result = exportTrace(trace, { label: `trace ${target}`, source: target }, options);
    }
  } catch (e) {
    if (e instanceof ExportRefusal) throw new UsageError(`${target}: ${e.message}`);
    throw e;
  }
  const { text, plan } = result;
  if (values.out !== undefined) await atomicWriteText(values.out, text);
  else console.log(text.trimEnd());
  const d = plan.divergence;
  console.error(
    `${values.out ?? "stdout"}: ${format}, ${plan.ops.length} ops` +
      (plan.skipped.length > 0 ? ` (${plan.skipped.length} left out)` : "") +
      `, ${new TextEncoder().encode(text).length} bytes; export-time kvm run: ` +
      (plan.kvmAbsent === null
        ? d === null ? "agrees" : `${d.kind} at op ${d.index}`
        : `none (${plan.kvmAbsent})`),
  );
  return 0;
}
