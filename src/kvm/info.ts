/**
 * @module
 * `deno task kvm-info [--json] [--help]`: prints the host record ({@linkcode KvmHost}):
 * the kernel, the KVM vendor module, the MMU that guest page-table ops exercise here,
 * whether this host is itself a guest, and every kvm* module parameter. Exit 0; 4 when
 * /dev/kvm cannot be used here (the record is still printed, with the reason on
 * stderr); 2 on a bad argument.
 */
import { type KvmHost, kvmHost } from "./host.ts";
import { kvmUnavailable } from "./vm.ts";

const USAGE = `Usage: deno task kvm-info [--json] [--help]

Prints which kernel and KVM the kvm backend runs on here, and which of KVM's MMUs
its guest page-table ops exercise (shadow paging, TDP MMU, legacy TDP).

  --json   print the record as JSON (the object run records and findings store)
  --help   print this help

Exit status: 0; 4 when /dev/kvm cannot be used here (what could be read is still
printed); 2 on a bad argument.`;

/** The record in readable form. */
export function formatKvmHost(h: Readonly<KvmHost>, devKvm: string | null): string {
  const lines: string[] = [];
  const row = (k: string, v: string) => lines.push(`${k.padEnd(14)}${v}`);
  lines.push(h.summary, "");
  row("kernel", h.kernel ?? "unknown (/proc/sys/kernel/osrelease absent)");
  row("vendor module", h.vendorModule === null ? "none" : `${h.vendorModule} (${h.vendor})`);
  row("MMU", `${h.mmu.mode}: ${h.mmu.why}`);
  row(
    "nested",
    h.nested === null
      ? "unknown (no flags in /proc/cpuinfo)"
      : h.nested
      ? "yes: this host is itself a guest (/proc/cpuinfo has the hypervisor flag)"
      : "no (no hypervisor flag in /proc/cpuinfo)",
  );
  row("/dev/kvm", devKvm === null ? "usable" : `not usable: ${devKvm}`);
  if (h.note !== undefined) row("note", h.note);
  for (const [m, params] of Object.entries(h.modules)) {
    const names = Object.keys(params);
    lines.push("", `${m} parameters${names.length === 0 ? ": none" : ""}`);
    const w = Math.max(0, ...names.map((n) => n.length));
    for (const n of names) lines.push(`  ${n.padEnd(w)}  ${params[n]}`);
  }
  if (h.absent.length > 0) lines.push("", `absent: ${h.absent.join(", ")}`);
  const bad = Object.entries(h.unreadable);
  if (bad.length > 0) {
    lines.push("", `unreadable: ${bad.map(([p, why]) => `${p} (${why})`).join(", ")}`);
  }
  return lines.join("\n");
}

/** Runs the command; returns the exit status. */
export function main(args: readonly string[]): number {
  let json = false;
  for (const a of args) {
    if (a === "--help" || a === "-h") {
      console.log(USAGE);
      return 0;
    }
    if (a === "--json") json = true;
    else {
      console.error(
        `Cannot parse arguments of deno task kvm-info: unknown argument ${
          JSON.stringify(a)
        } (deno task kvm-info --help for usage)`,
      );
      return 2;
    }
  }
  const devKvm = kvmUnavailable();
  const host = kvmHost();
  console.log(json ? JSON.stringify(host, null, 2) : formatKvmHost(host, devKvm));
  if (devKvm !== null) {
    console.error(`kvm-info: the kvm backend cannot run here: ${devKvm}`);
    return 4;
  }
  return 0;
}

if (import.meta.main) Deno.exit(main(Deno.args));
