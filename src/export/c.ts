/**
 * @module
 * Writes an {@linkcode ExportPlan} as one C file: the constants of `src/kvm/layout.ts` and
 * `src/kvm/uapi.ts` as `#define`s, the agent's built bytes (`src/kvm/agent/agent_bin.ts`)
 * as a C array, the trace's ops as agent commands and host-op arguments (the kvm
 * backend's `#add` mapping and hva relocation, applied here), the reference's permitted
 * outcomes per op, then the engine of `c_runtime.ts` on one of two platform layers:
 *
 * - `c`: libc and `<linux/kvm.h>` only; `cc -O2 -o repro repro.c`.
 * - `selftest`: a test for tools/testing/selftests/kvm, on its library (`kvm_util.h`,
 *   `processor.h`: `vm_create_barebones`, `__vm_vcpu_add`, `__vcpu_run`, `TEST_ASSERT`,
 *   `TEST_REQUIRE`, `ksft_exit_*`). It builds only inside a kernel tree.
 */
import type { Permitted } from "../backend.ts";
import { AGENT_BYTES } from "../kvm/agent/agent_bin.ts";
import { KVM_WATCHDOG_MS, KVM_WATCHDOG_OPS } from "../kvm/backend.ts";
import { plausibleSlot } from "../kvm/constraints.ts";
import { HvaMap } from "../kvm/hva.ts";
import * as L from "../kvm/layout.ts";
import { ctlWords, sizeIndex } from "../kvm/layout.ts";
import * as U from "../kvm/uapi.ts";
import { formatOp, formatOutcome, formatPermitted } from "../trace/text.ts";
import type { Config, Op, Outcome, PageRuns } from "../trace/types.ts";
import {
  ENGINE_BODY,
  ENGINE_TYPES,
  MAIN_C,
  MAIN_SELFTEST,
  PLATFORM_C,
  PLATFORM_SELFTEST,
} from "./c_runtime.ts";
import type { ExportPlan, PlannedOp } from "./plan.ts";

export type ExportFormat = "c" | "selftest";

/** What the report prints beside the ops (replay's words need the finding's). */
export interface ExportMeta {
  /** "minimized trace", "full trace", or "trace FILE". */
  label: string;
  /** Where the trace came from, for the header comment. */
  source: string;
  findingId?: string;
  findingSignature?: string;
  title?: string;
  /** The command that wrote the file (header comment). */
  command?: string;
}

/** A C string literal: printable ASCII kept, everything else (and `?`, for trigraphs) escaped. */
export function cString(s: string): string {
  let out = '"';
  for (const byte of new TextEncoder().encode(s)) {
    const ch = String.fromCharCode(byte);
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (ch === "?") out += "\\?";
    else if (byte >= 0x20 && byte < 0x7f) out += ch;
    else out += "\\" + byte.toString(8).padStart(3, "0");
  }
  return out + '"';
}

/** Text for a C comment (no comment terminator inside). */
function commentText(s: string): string {
  return s.replaceAll("*/", "* /").replaceAll("/*", "/ *");
}

function u64(v: bigint): string {
  return `0x${BigInt.asUintN(64, v).toString(16)}ULL`;
}

/** The four ASCII bytes of `s` as a little-endian CPUID register. */
function word(s: string): number {
  return s.split("").reduce((acc, ch, i) => acc | (ch.charCodeAt(0) << (8 * i)), 0) >>> 0;
}

/** The registers vm.ts #setSregs / #setRegs derive from the config (SDM vol. 3A 2.5, 2.2.1). */
function controlWords(cfg: Config): { cr0: bigint; cr4: bigint; efer: bigint; rflags: bigint } {
  // CR0: PE(0) MP(1) ET(4) NE(5) WP(16) PG(31); CR4: PAE(5) PCE(8) SMEP(20) SMAP(21);
  // EFER: LME(8) LMA(10) NXE(11); EFLAGS: bit 1 always, AC(18).
  return {
    cr0: 0x80000033n | (cfg.cr0.wp ? 1n << 16n : 0n),
    cr4: (1n << 5n) | (cfg.cr4.pce ? 1n << 8n : 0n) | (cfg.cr4.smep ? 1n << 20n : 0n) |
      (cfg.cr4.smap ? 1n << 21n : 0n),
    efer: (1n << 8n) | (1n << 10n) | (cfg.efer.nx ? 1n << 11n : 0n),
    rflags: cfg.rflags.ac ? 0x40002n : 0x2n,
  };
}

/** The agent bytes as a C initializer: nonzero stretches with designated indexes. */
function agentArray(bytes: Uint8Array): string {
  const lines: string[] = [];
  let i = 0;
  while (i < bytes.length) {
    if (bytes[i] === 0) {
      i++;
      continue;
    }
    // A stretch ends at 16 zero bytes in a row.
    let end = i, zeros = 0;
    for (let k = i; k < bytes.length && zeros < 16; k++) {
      if (bytes[k] === 0) zeros++;
      else (zeros = 0), (end = k + 1);
    }
    const part = Array.from(bytes.subarray(i, end), (b) => `0x${b.toString(16).padStart(2, "0")}`);
    lines.push(`\t[0x${i.toString(16)}] =`);
    for (let k = 0; k < part.length; k += 16) {
      lines.push(`\t\t${part.slice(k, k + 16).join(", ")},`);
    }
    i = end;
  }
  return lines.join("\n");
}

interface Tables {
  ops: string[];
  perms: string[];
  runs: string[];
  events: string[];
  /** Where the trace's slot hvas lie in the window, placed as the kvm backend does. */
  hva: HvaMap;
}

function addRuns(t: Tables, runs: PageRuns | undefined): [number, number] {
  const first = t.runs.length;
  for (const [a, b] of runs ?? []) t.runs.push(`{ ${a}ULL, ${b}ULL }`);
  return [first, t.runs.length - first];
}

function permEntry(t: Tables, p: Permitted): string {
  const o = p.outcome;
  const f: string[] = [];
  const text = `.text = ${cString(formatPermitted(p))}`;
  if ("errno" in o) f.push("SF_O_ERRNO", `.name = ${cString(o.errno === 0 ? "0" : o.errno)}`);
  else if ("ok" in o) f.push("SF_O_OK");
  else if ("gp" in o) f.push("SF_O_GP");
  else if ("value" in o) {
    f.push("SF_O_VALUE", `.a = ${u64(o.value)}`, `.dont_care = ${u64(p.dontCare ?? 0n)}`);
  } else if ("mmio" in o) {
    f.push("SF_O_MMIO", `.a = ${u64(o.mmio.gpa)}`, `.b = ${o.mmio.write ? 1 : 0}`);
  } else if ("pf" in o) {
    f.push("SF_O_PF", `.a = ${u64(BigInt(o.pf.code))}`, `.b = ${u64(o.pf.cr2)}`);
  } else if ("bitmap" in o || "young" in o) {
    const [rf, rc] = addRuns(t, "bitmap" in o ? o.bitmap : o.young);
    const [df, dc] = addRuns(t, p.dontCarePages);
    f.push(
      "bitmap" in o ? "SF_O_BITMAP" : "SF_O_YOUNG",
      `.runs_first = ${rf}, .runs_count = ${rc}, .dc_first = ${df}, .dc_count = ${dc}`,
    );
  } else if ("count" in o) f.push("SF_O_COUNT", `.a = ${o.count}ULL`);
  else f.push("SF_O_CRASH");
  return `\t{ .kind = ${f.join(", ")}, ${text} },`;
}

/** The C fields of one op (backend.ts #add and #slot/#discard relocation, applied here). */
function opFields(t: Tables, op: Op, index: number): string[] {
  const guest = (
    routine: number,
    addr: bigint,
    value = 0n,
    aux: bigint | { routine: number } = 0n,
    status = L.S_OK,
  ) => [
    "SF_OP_GUEST",
    `.routine = ${routine}`,
    `.addr = ${u64(addr)}`,
    `.value = ${u64(value)}`,
    typeof aux === "bigint"
      ? `.aux = ${u64(aux)}, .aux_routine = -1`
      : `.aux_routine = ${aux.routine}`,
    `.status = ${status}`,
  ];
  const phys = (what: string, gpa: bigint, size: number) =>
    `.check = SF_CHECK_PHYS, .check_addr = ${u64(gpa)}, .check_size = ${size}, .check_what = ${
      cString(what)
    }`;
  const walk = (gva: bigint, size: number) =>
    `.check = SF_CHECK_WALK, .check_addr = ${u64(gva)}, .check_size = ${size}`;
  switch (op.op) {
    case "write":
      return [
        ...guest(L.K_STORE + sizeIndex(op.size), L.DIRECT_GVA + op.gpa, op.value),
        phys("write", op.gpa, op.size),
      ];
    case "read":
      return [
        ...guest(L.K_LOAD + sizeIndex(op.size), L.DIRECT_GVA + op.gpa, 0n, 0n, L.S_VALUE),
        phys("read", op.gpa, op.size),
      ];
    case "access": {
      if (op.kind === "fetch") break;
      const s = sizeIndex(op.size);
      const w = walk(op.gva, op.size);
      if (op.kind === "write") {
        return op.user
          ? [...guest(L.K_USER, op.gva, op.value ?? 0n, { routine: L.U_STORE + s }), w]
          : [...guest(L.K_STORE + s, op.gva, op.value ?? 0n), w];
      }
      return op.user
        ? [...guest(L.K_USER, op.gva, 0n, { routine: L.U_LOAD + s }, L.S_VALUE), w]
        : [...guest(L.K_LOAD + s, op.gva, 0n, 0n, L.S_VALUE), w];
    }
    case "invlpg":
      return guest(L.K_INVLPG, op.gva);
    case "ctl": {
      const [mask, value] = ctlWords(op);
      return guest(L.K_CTL, 0n, value, mask);
    }
    case "wrmsr":
      return guest(L.K_WRMSR, BigInt(op.msr), op.value);
    case "rdmsr":
      return guest(L.K_RDMSR, BigInt(op.msr), 0n, 0n, L.S_VALUE);
    case "rdpmc":
      return op.user
        ? guest(L.K_USER, BigInt(op.ecx), 0n, { routine: L.U_RDPMC }, L.S_VALUE)
        : guest(L.K_RDPMC, BigInt(op.ecx), 0n, 0n, L.S_VALUE);
    case "cr3":
      return ["SF_OP_CR3", `.addr = ${u64(op.gpa)}`];
    case "slot": {
      // backend.ts #slot: a slot KVM could accept gets its hvas placed in the VM's window
      // (src/kvm/hva.ts, over the same ops in the same order); deletions and slots KVM
      // rejects by itself go to KVM unchanged, for KVM to judge.
      const size = BigInt(op.pages) * 4096n;
      let winOff: bigint | null = null;
      if (op.pages > 0 && plausibleSlot(op.id, op.gpa, op.pages, op.hva)) {
        const at = t.hva.place(op.hva, size);
        if (typeof at === "string") {
          throw new RangeError(`Cannot emit op ${index} (${formatOp(op)}) as C: ${at}`);
        }
        winOff = at;
      }
      const inWindow = winOff !== null;
      const flags = (op.flags.includes("log") ? U.KVM_MEM_LOG_DIRTY_PAGES : 0) |
        (op.flags.includes("ro") ? U.KVM_MEM_READONLY : 0);
      return [
        "SF_OP_SLOT",
        `.id = ${op.id >>> 0}U, .flags = ${flags}`,
        `.gpa = ${u64(op.gpa)}, .size = ${u64(size)}, .hva = ${
          u64(op.hva)
        }, .pages = ${op.pages}ULL`,
        `.in_window = ${inWindow ? 1 : 0}, .win_off = ${u64(winOff ?? 0n)}`,
      ];
    }
    case "dirtylog":
      return ["SF_OP_DIRTYLOG", `.id = ${op.id >>> 0}U`];
    case "discard": {
      // backend.ts #discard: the window memory of the range's placed regions.
      const runs = t.hva.runs(op.hva, BigInt(op.pages) * 4096n);
      if (runs.length > 1) {
        throw new RangeError(
          `Cannot emit op ${index} (${formatOp(op)}) as C: its hvas lie in ${runs.length} ` +
            "separate parts of the window (the C runtime drops one range per op)",
        );
      }
      const [off, len] = runs[0] ?? [0n, 0n];
      return [
        "SF_OP_DISCARD",
        `.discard_in = ${runs.length}, .discard_off = ${u64(off)}, .discard_len = ${u64(len)}`,
      ];
    }
    case "filter": {
      const first = t.events.length;
      for (const e of op.events) t.events.push(u64(e));
      return [
        "SF_OP_FILTER",
        `.action = ${op.action >>> 0}U, .fflags = ${op.flags >>> 0}U, .fixed = ${op.fixed >>> 0}U`,
        `.nevents = ${op.events.length}, .events_first = ${first}`,
      ];
    }
    case "dirtyclear":
      throw new RangeError(
        `Cannot emit op ${index} (${formatOp(op)}) as C: the C runtime has no ` +
          "KVM_CLEAR_DIRTY_LOG yet",
      );
    default:
      break;
  }
  throw new RangeError(
    `Cannot emit op ${index} (${formatOp(op)}) as C: the kvm backend cannot run it`,
  );
}

function opEntry(t: Tables, p: PlannedOp): string {
  const fields = opFields(t, p.op, p.index);
  const first = t.perms.length;
  for (const q of p.permitted) t.perms.push(permEntry(t, q));
  const committed = "value" in p.committed
    ? `.committed_known = 1, .committed_value = ${u64(p.committed.value)}`
    : ".committed_known = 0";
  return [
    `\t{ /* op ${p.index} */ .index = ${p.index}, .kind = ${fields[0]},`,
    `\t  .text = ${cString(formatOp(p.op))},`,
    ...fields.slice(1).map((f) => `\t  ${f},`),
    `\t  .perm_first = ${first}, .perm_count = ${p.permitted.length}, .followed = ${p.followed}, ` +
    `.branch_free = ${p.branchFree ? 1 : 0}, ${committed} },`,
  ].join("\n");
}

function nameTable(name: string, table: Readonly<Record<number, string>>): string {
  const rows = Object.entries(table).map(([n, s]) => `\t{ ${n}, ${cString(s)} },`);
  return `static const struct { int n; const char *name; } ${name}[] = {\n${rows.join("\n")}\n};`;
}

function defines(plan: ExportPlan): string {
  const cfg = plan.trace.config;
  const w = controlWords(cfg);
  const vendor = cfg.vendor === "amd" ? ["Auth", "enti", "cAMD"] : ["Genu", "ineI", "ntel"];
  const layout: [string, bigint | number][] = [
    ["AGENT_SLOT", L.AGENT_SLOT],
    ["AGENT_GPA", L.AGENT_GPA],
    ["AGENT_GPA_SIZE", L.AGENT_GPA_SIZE],
    ["AGENT_MEM_SIZE", L.AGENT_MEM_SIZE],
    ["AGENT_PML4_INDEX", L.AGENT_PML4_INDEX],
    ["DIRECT_PML4_INDEX", L.DIRECT_PML4_INDEX],
    ["AGENT_GVA", L.AGENT_GVA],
    ["DIRECT_MAP_LIMIT", L.DIRECT_MAP_LIMIT],
    ["OFF_CODE", L.OFF_CODE],
    ["OFF_VECTORS", L.OFF_VECTORS],
    ["OFF_USER", L.OFF_USER],
    ["OFF_GDT", L.OFF_GDT],
    ["OFF_TSS", L.OFF_TSS],
    ["OFF_IDT", L.OFF_IDT],
    ["OFF_DATA", L.OFF_DATA],
    ["OFF_FAULT_STACK_TOP", L.OFF_FAULT_STACK_TOP],
    ["OFF_LOOP_STACK_TOP", L.OFF_LOOP_STACK_TOP],
    ["OFF_CMD", L.OFF_CMD],
    ["REC_SIZE", L.REC_SIZE],
    ["R_ROUTINE", L.R_ROUTINE],
    ["R_ADDR", L.R_ADDR],
    ["R_VALUE", L.R_VALUE],
    ["R_AUX", L.R_AUX],
    ["R_STATUS", L.R_STATUS],
    ["R_VECTOR", L.R_VECTOR],
    ["R_RESULT", L.R_RESULT],
    ["R_ERROR", L.R_ERROR],
    ["R_CR2", L.R_CR2],
    ["OFF_ROUTINES", L.OFF_ROUTINES],
    ["D_RFLAGS", L.D_RFLAGS],
    ["OFF_ROOT", L.OFF_ROOT],
    ["OFF_AGENT_PDPT", L.OFF_AGENT_PDPT],
    ["OFF_AGENT_PD", L.OFF_AGENT_PD],
    ["OFF_AGENT_PT", L.OFF_AGENT_PT],
    ["OFF_DIRECT_PDPT", L.OFF_DIRECT_PDPT],
    ["OFF_DIRECT_PD", L.OFF_DIRECT_PD],
    ["AGENT_MAPPED_PAGES", L.AGENT_MAPPED_PAGES],
    ["EXIT_PORT", L.EXIT_PORT],
    ["SEL_KERNEL_CS", L.SEL_KERNEL_CS],
    ["SEL_KERNEL_DS", L.SEL_KERNEL_DS],
    ["SEL_TSS", L.SEL_TSS],
    ["K_DONE", L.K_DONE],
    ["K_CR3", L.K_CR3],
    ["ROUTINE_COUNT", L.ROUTINE_COUNT],
    ["S_OK", L.S_OK],
    ["S_VALUE", L.S_VALUE],
    ["S_EXCEPTION", L.S_EXCEPTION],
    ["HVA_WINDOW_START", L.HVA_WINDOW_START],
    ["HVA_WINDOW_END", L.HVA_WINDOW_END],
    ["ROOT_BYTES", 8 * L.DIRECT_PML4_INDEX],
    ["KVM_WATCHDOG_MS", KVM_WATCHDOG_MS],
    ["KVM_WATCHDOG_OPS", KVM_WATCHDOG_OPS],
  ];
  const num = (v: bigint | number) =>
    typeof v === "bigint" ? u64(v) : v >= 0x10000 ? `0x${v.toString(16)}U` : `${v}`;
  const slots = plan.ops.filter((p) => p.op.op === "slot").length;
  return [
    "/* The agent's layout (src/kvm/layout.ts) and the backend's bounds (src/kvm/backend.ts). */",
    ...layout.map(([k, v]) => `#define SF_${k} ${num(v)}`),
    "",
    "/* The trace's config, as vm.ts applies it (CPUID filter, sregs, regs). */",
    `#define SF_MAXPHYADDR ${cfg.maxPhyAddr}`,
    `#define SF_VENDOR_IS_AMD ${cfg.vendor === "amd" ? 1 : 0}`,
    `#define SF_VENDOR_EBX 0x${word(vendor[0]!).toString(16)}U /* ${vendor[0]} */`,
    `#define SF_VENDOR_EDX 0x${word(vendor[1]!).toString(16)}U /* ${vendor[1]} */`,
    `#define SF_VENDOR_ECX 0x${word(vendor[2]!).toString(16)}U /* ${vendor[2]} */`,
    `#define SF_GB_PAGES ${cfg.gbPages ? 1 : 0}`,
    "/* What the host must provide: fields some op's permitted outcomes depend on. */",
    `#define SF_NEEDS_GB_PAGES ${plan.needs.gbPages ? 1 : 0}`,
    `#define SF_NEEDS_PMU ${plan.needs.pmu ? 1 : 0}`,
    `#define SF_FEATURE_SMEP ${cfg.features.smep ? 1 : 0}`,
    `#define SF_FEATURE_SMAP ${cfg.features.smap ? 1 : 0}`,
    `#define SF_PMU_VERSION ${cfg.pmu.version}`,
    `#define SF_CR0 ${u64(w.cr0)}`,
    `#define SF_CR4 ${u64(w.cr4)}`,
    `#define SF_EFER ${u64(w.efer)}`,
    `#define SF_RFLAGS ${u64(w.rflags)}`,
    `#define SF_MAX_SLOTS ${Math.max(1, slots)}`,
    `#define SF_USES_FILTER ${plan.ops.some((p) => p.op.op === "filter") ? 1 : 0}`,
    `#define SF_NOPS ${plan.ops.length}`,
    `#define SF_TRACE_OPS ${plan.trace.ops.length}`,
  ].join("\n");
}

function metaStrings(plan: ExportPlan, meta: ExportMeta): string {
  const d = plan.divergence;
  return [
    `static const char SF_LABEL[] = ${cString(meta.label)};`,
    `static const char SF_FINDING_ID[] = ${cString(meta.findingId ?? "")};`,
    `static const char SF_FINDING_SIGNATURE[] = ${cString(meta.findingSignature ?? "")};`,
    `static const char SF_TITLE[] = ${cString(meta.title ?? "")};`,
    "/* The first divergence the export saw (kvm at export time, or the finding's record). */",
    `#define SF_EXPORT_DIV_INDEX ${d === null ? -1 : d.index}`,
    `static const char SF_EXPORT_DIV_OUTCOME[] = ${
      cString(d === null ? "" : formatOutcome(d.observed))
    };`,
    `static const char SF_EXPORT_SIGNATURE[] = ${cString(d?.signature ?? "")};`,
  ].join("\n");
}

function headerComment(plan: ExportPlan, meta: ExportMeta, format: ExportFormat): string {
  const lines: string[] = [];
  const add = (s = "") => lines.push(s === "" ? " *" : ` * ${commentText(s)}`);
  add(
    format === "c"
      ? "shadowfuzz standalone reproducer: one trace on /dev/kvm, judged against the reference."
      : "shadowfuzz reproducer as a KVM selftest: one trace, judged against the reference.",
  );
  add();
  add(`Source: ${meta.source} (${meta.label}).`);
  if (meta.findingId !== undefined) {
    add(`Finding ${meta.findingId}: ${meta.findingSignature ?? ""}`);
  }
  if (meta.title !== undefined) add(`Title: ${meta.title}`);
  if (meta.command !== undefined) add(`Written by: ${meta.command}`);
  add();
  if (format === "c") {
    add("Build and run (libc and <linux/kvm.h> only; x86-64 Linux):");
    add("  cc -O2 -o repro repro.c && ./repro      (-v prints every op and outcome)");
    add("Exit: 0 every op agrees, 1 it reproduces (first divergence or crash printed in");
    add("the words of `deno task replay`), 3 inconclusive (see below), 4 cannot run here");
    add("(no /dev/kvm, a capability or the config's CPU features missing, or an op the");
    add("kvm backend would refuse in the state reached).");
  } else {
    add("Drop into tools/testing/selftests/kvm/x86/ (x86_64/ in older trees), add it to");
    add("TEST_GEN_PROGS_x86 in the Makefile and build it with the other KVM selftests. It");
    add("uses the selftest library only for the VM, vCPU, ioctls and exits: ksft_exit_pass()");
    add("when every op agrees, TEST_ASSERT failure (the library's failing exit) when KVM");
    add("diverges, ksft_exit_skip() when it cannot run here or is inconclusive.");
  }
  add();
  add("How it runs: the guest is shadowfuzz's own agent (src/kvm/agent/agent.S, bytes");
  add("below), spoken to through its 64-byte command records exactly as the kvm backend");
  add("(src/kvm/backend.ts) does, one op per KVM_RUN as `step` runs it; memslots, page");
  add("tables (through the trace's own write ops), CR3 handling and hva relocation follow");
  add("the backend. Each outcome is compared with the permitted set the reference");
  add("(src/reference/mod.ts) computed for that op at export time.");
  add();
  add("Several permitted outcomes: all are embedded, each with its don't-care bits or");
  add("pages, and any of them agrees. The reference's later sets follow one branch: the");
  add("outcome kvm returned at export time where it ran, else the canonical (first) one.");
  add("If an access or read here takes another permitted entry (or other don't-care bits)");
  add("than the export followed, the later sets may not apply: a later divergence is then");
  add("reported as inconclusive (exit 3), and agreement carries a note.");
  add(
    plan.kvmAbsent === null
      ? "Export-time kvm run: yes (the branches followed are kvm's)."
      : `Export-time kvm run: no (${plan.kvmAbsent}): canonical branches followed.`,
  );
  if (plan.skipped.length > 0) {
    add();
    add(`Left out (the kvm backend cannot run them; diff and replay skip them too):`);
    for (const s of plan.skipped) add(`  op ${s.index}: ${formatOp(s.op)}: ${s.reason}`);
  }
  add();
  add(`Ops (${plan.ops.length} of ${plan.trace.ops.length}):`);
  for (const p of plan.ops) {
    add(`  op ${p.index}: ${formatOp(p.op)}`);
    for (const q of p.permitted) {
      add(
        `      permitted: ${formatPermitted(q)}${
          p.permitted.length > 1 && q === p.permitted[p.followed] ? " [followed]" : ""
        }`,
      );
    }
    if (p.observed !== undefined && !permittedHas(p.permitted, p.observed, p.followed)) {
      add(`      at export: ${formatOutcome(p.observed)}`);
    }
  }
  return `/*\n${lines.join("\n")}\n */`;
}

function permittedHas(permitted: Permitted[], observed: Outcome, followed: number): boolean {
  const p = permitted[followed];
  return p !== undefined && formatOutcome(p.outcome) === formatOutcome(observed);
}

const C_INCLUDES = `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>`;

const SELFTEST_INCLUDES = `// SPDX-License-Identifier: GPL-2.0-only
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"`;

/** The C text of `plan` in `format`. */
export function emitC(plan: ExportPlan, meta: ExportMeta, format: ExportFormat): string {
  if (plan.trace.config.dirtyLog.manualProtect) {
    throw new RangeError(
      "Cannot emit the trace as C: its config enables KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 " +
        "(dirtyLog.manualProtect), which the C runtime does not enable yet",
    );
  }
  const t: Tables = {
    ops: [],
    perms: [],
    runs: [],
    events: [],
    hva: new HvaMap(L.HVA_WINDOW_END - L.HVA_WINDOW_START, L.HVA_WINDOW_START),
  };
  for (const p of plan.ops) t.ops.push(opEntry(t, p));
  const or = <T>(rows: T[], dummy: string) => rows.length > 0 ? rows.join("\n") : dummy;
  const data = [
    `static const unsigned char sf_agent_code[${AGENT_BYTES.length}] = {`,
    agentArray(AGENT_BYTES),
    "};",
    "",
    nameTable("sf_errno_names", U.ERRNO_NAMES),
    nameTable("sf_exit_names", U.KVM_EXIT_NAMES),
    "",
    metaStrings(plan, meta),
    "",
    "/* Pages of bitmap outcomes and their don't-care pages, as [first, last] runs. */",
    `static const uint64_t sf_runs[][2] = {\n${
      or(t.runs.map((r) => `\t${r},`), "\t{ 0, 0 },")
    }\n};`,
    `static const uint64_t sf_events[] = {\n${or(t.events.map((e) => `\t${e},`), "\t0,")}\n};`,
    "",
    "/* The reference's permitted outcomes, op by op (formatPermitted text beside). */",
    `static const struct sf_perm sf_perms[] = {\n${or(t.perms, "\t{ .kind = SF_O_NONE },")}\n};`,
    "",
    `static const struct sf_op sf_ops[${Math.max(1, plan.ops.length)}] = {\n${
      or(t.ops, "\t{ .kind = SF_OP_GUEST },")
    }\n};`,
  ].join("\n");
  return [
    format === "c" ? "" : SELFTEST_INCLUDES.split("\n")[0]!,
    headerComment(plan, meta, format),
    "",
    format === "c" ? C_INCLUDES : SELFTEST_INCLUDES.split("\n").slice(1).join("\n"),
    "",
    defines(plan),
    ENGINE_TYPES,
    data,
    format === "c" ? PLATFORM_C : PLATFORM_SELFTEST,
    ENGINE_BODY,
    format === "c" ? MAIN_C : MAIN_SELFTEST,
  ].filter((s, i) => i !== 0 || s !== "").join("\n");
}
