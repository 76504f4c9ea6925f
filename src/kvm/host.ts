/**
 * @module
 * The host record: which kernel and which KVM the kvm backend runs on, and which of
 * KVM's MMUs its guest page-table ops therefore exercise (issue 12 section 1). A plain
 * JSON-able object for run records, findings and `deno task kvm-info`.
 *
 * Sources, all read-only: `/proc/sys/kernel/osrelease` (the release `uname -r`
 * prints), `/sys/module/<kvm*>/parameters/*` (every module parameter of every module
 * whose name starts with `kvm`), and the `hypervisor` flag of `/proc/cpuinfo` (set by
 * the kernel when it runs under a hypervisor, arch/x86/kernel/cpu/common.c; CPUID.1:ECX
 * bit 31). Deno grants /proc and /sys paths only with `--allow-all`, so the files are
 * read through libc (FFI), like /dev/kvm; without FFI permission Deno's own file APIs
 * are tried. A missing file is recorded as absent, an unreadable one with its errno,
 * never thrown.
 *
 * The MMU mode: KVM uses two-dimensional paging when the vendor module enables it
 * (`kvm_intel.ept`, `kvm_amd.npt`; arch/x86/kvm/vmx/vmx.c `enable_ept`, svm/svm.c
 * `npt_enabled`), and then the TDP MMU when `kvm.tdp_mmu` is Y (arch/x86/kvm/mmu/mmu.c,
 * since Linux 5.10; without the parameter there is no TDP MMU), the legacy TDP code of
 * mmu.c otherwise. Without TDP, or with a vendor module that has none (kvm_pvm), guest
 * page tables are shadowed: the MMU this fuzzer was built to test.
 */
import { errno, libc } from "./libc.ts";
import { ERRNO_NAMES, O_CLOEXEC } from "./uapi.ts";

/** The MMU KVM uses for guest page tables on this host. */
export type KvmMmuMode = "shadow paging" | "TDP MMU" | "legacy TDP" | "none";

/** What the kvm backend runs on (see the module doc). Plain JSON. */
export interface KvmHost {
  /** The record's format tag. */
  format: "shadowfuzz.kvm-host/1";
  /** The kernel release (`uname -r`), or null when /proc/sys/kernel/osrelease is absent. */
  kernel: string | null;
  /** The KVM vendor module loaded: kvm_intel, kvm_amd, another kvm_* (kvm_pvm), or null. */
  vendorModule: string | null;
  /** The vendor of that module; `none` without one. */
  vendor: "intel" | "amd" | "other" | "none";
  /** Every `kvm*` module in /sys/module: parameter name to value (trailing newline cut). */
  modules: Record<string, Record<string, string>>;
  /** The MMU that guest page-table ops exercise here. */
  mmu: {
    mode: KvmMmuMode;
    /** Two-dimensional paging on (`kvm_intel.ept`, `kvm_amd.npt`). */
    tdp: boolean;
    /** The parameters the mode was derived from, e.g. `{ "kvm_intel.ept": "Y", "kvm.tdp_mmu": "Y" }`. */
    from: Record<string, string>;
    /** Why, in words. */
    why: string;
  };
  /** This host is itself a guest (the /proc/cpuinfo `hypervisor` flag); null when unknown. */
  nested: boolean | null;
  /** One line, e.g. `Linux 6.18.44 kvm_pvm, shadow paging (tdp_mmu=N), enable_pmu=N, mmio_caching=N`. */
  summary: string;
  /** With TDP: guest page-table ops exercise the hardware walker, not KVM's shadow MMU. */
  note?: string;
  /** Files and directories looked for and not found (paths below the root read). */
  absent: string[];
  /** Files that exist but could not be read: path to the reason. */
  unreadable: Record<string, string>;
}

/** The note of a TDP host (issue 12 section 1). */
export const TDP_NOTE: string =
  "guest page-table ops exercise the hardware walker, not KVM's shadow " +
  "MMU; memslot, dirty-log and discard ops still exercise KVM";

type ReadResult = { text: string } | { absent: true } | { error: string };
type ListResult = { names: string[] } | { absent: true } | { error: string };

/** How files are read: through libc where FFI is permitted, Deno's APIs otherwise. */
interface HostFs {
  read(path: string, stopAfter?: RegExp): ReadResult;
  list(path: string): ListResult;
}

const ENOENT = 2, ENOTDIR = 20;

function errnoText(n: number): string {
  return ERRNO_NAMES[n] ?? `errno ${n}`;
}

function cPath(s: string): Uint8Array<ArrayBuffer> {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** Files through libc open/read/opendir/readdir. */
function libcFs(): HostFs {
  const c = libc();
  return {
    read(path, stopAfter) {
      const fd = c.open(cPath(path), O_CLOEXEC, 0); // O_RDONLY is 0
      if (fd < 0) {
        const e = errno();
        return e === ENOENT || e === ENOTDIR ? { absent: true } : { error: errnoText(e) };
      }
      try {
        const chunks: Uint8Array[] = [];
        let text = "";
        for (;;) {
          const buf = new Uint8Array(65536);
          const n = Number(c.read(fd, buf, BigInt(buf.length)));
          if (n < 0) return { error: errnoText(errno()) };
          if (n === 0) break;
          chunks.push(buf.subarray(0, n));
          if (stopAfter !== undefined) {
            text = new TextDecoder().decode(concat(chunks));
            if (stopAfter.test(text)) return { text };
          }
        }
        return { text: new TextDecoder().decode(concat(chunks)) };
      } finally {
        c.close(fd);
      }
    },
    list(path) {
      const dir = c.opendir(cPath(path));
      if (dir === null) {
        const e = errno();
        return e === ENOENT || e === ENOTDIR ? { absent: true } : { error: errnoText(e) };
      }
      try {
        const names: string[] = [];
        for (;;) {
          const ent = c.readdir(dir);
          if (ent === null) break;
          // struct dirent (glibc, x86-64): d_ino 8, d_off 8, d_reclen 2, d_type 1, then
          // d_name at offset 19 (bits/dirent.h).
          const name = new Deno.UnsafePointerView(ent).getCString(19);
          if (name !== "." && name !== "..") names.push(name);
        }
        return { names: names.sort() };
      } finally {
        c.closedir(dir);
      }
    },
  };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Files through Deno's APIs (no FFI permission; /proc and /sys then need --allow-all). */
function denoFs(): HostFs {
  const fail = (e: unknown): ReadResult & ListResult => {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return { absent: true };
    }
    if (e instanceof Deno.errors.NotCapable) {
      return { error: "not permitted: run with --allow-ffi" };
    }
    return { error: e instanceof Error ? e.message : String(e) };
  };
  return {
    read(path) {
      try {
        return { text: Deno.readTextFileSync(path) };
      } catch (e) {
        return fail(e);
      }
    },
    list(path) {
      try {
        return { names: [...Deno.readDirSync(path)].map((e) => e.name).sort() };
      } catch (e) {
        return fail(e);
      }
    },
  };
}

function hostFs(): HostFs {
  try {
    return libcFs();
  } catch {
    return denoFs();
  }
}

/** Vendor modules in the order they are looked for; any other kvm_* module after them. */
const VENDORS: readonly { module: string; vendor: KvmHost["vendor"]; tdp: string | null }[] = [
  { module: "kvm_intel", vendor: "intel", tdp: "ept" },
  { module: "kvm_amd", vendor: "amd", tdp: "npt" },
];

/** Y/N module parameter values: bool parameters print Y or N; some print 1 or 0. */
function on(v: string | undefined): boolean {
  return v === "Y" || v === "y" || v === "1";
}

/**
 * Reads the host record from the tree at `root` ("/" on a real host; a temporary
 * directory with proc/ and sys/ in tests). Uncached: use {@linkcode kvmHost}.
 */
export function readKvmHost(root = "/"): KvmHost {
  const fs = hostFs();
  const base = root.endsWith("/") ? root.slice(0, -1) : root;
  const absent: string[] = [];
  const unreadable: Record<string, string> = {};
  const read = (path: string, stopAfter?: RegExp): string | null => {
    const r = fs.read(base + path, stopAfter);
    if ("text" in r) return r.text;
    if ("absent" in r) absent.push(path);
    else unreadable[path] = r.error;
    return null;
  };
  const list = (path: string): string[] | null => {
    const r = fs.list(base + path);
    if ("names" in r) return r.names;
    if ("absent" in r) absent.push(path);
    else unreadable[path] = r.error;
    return null;
  };

  const kernel = read("/proc/sys/kernel/osrelease")?.trim() ?? null;

  const modules: Record<string, Record<string, string>> = {};
  const kvmModules = (list("/sys/module") ?? []).filter((m) => m.startsWith("kvm"));
  for (const m of kvmModules) {
    const params: Record<string, string> = {};
    const dir = `/sys/module/${m}/parameters`;
    const r = fs.list(base + dir);
    // A module without parameters has no parameters directory: not worth reporting.
    if ("names" in r) {
      for (const p of r.names) {
        const v = read(`${dir}/${p}`);
        if (v !== null) params[p] = v.replace(/\n$/, "");
      }
    } else if ("error" in r) unreadable[dir] = r.error;
    modules[m] = params;
  }
  if (!kvmModules.includes("kvm")) absent.push("/sys/module/kvm");

  const known = VENDORS.find((v) => kvmModules.includes(v.module));
  const otherModule = kvmModules.find((m) => m.startsWith("kvm_"));
  const vendorModule = known?.module ?? otherModule ?? null;
  const vendor: KvmHost["vendor"] = known?.vendor ?? (vendorModule === null ? "none" : "other");

  const kvm = modules["kvm"] ?? {};
  const from: Record<string, string> = {};
  let tdp = false;
  let mode: KvmMmuMode;
  let why: string;
  if (vendorModule === null) {
    mode = "none";
    why = "no KVM vendor module is loaded (no /sys/module/kvm_*)";
  } else {
    const tdpParam = known?.tdp ?? null;
    const tdpValue = tdpParam === null ? undefined : modules[vendorModule]?.[tdpParam];
    if (tdpParam !== null && tdpValue !== undefined) from[`${vendorModule}.${tdpParam}`] = tdpValue;
    if (kvm["tdp_mmu"] !== undefined) from["kvm.tdp_mmu"] = kvm["tdp_mmu"];
    tdp = on(tdpValue);
    if (tdpParam === null) {
      mode = "shadow paging";
      why = `${vendorModule} has no two-dimensional paging (no ept or npt parameter): ` +
        "KVM shadows the guest's page tables";
    } else if (tdpValue === undefined) {
      mode = "shadow paging";
      why = `${vendorModule}.${tdpParam} is absent: taken as off, KVM shadows the guest's ` +
        "page tables";
      absent.push(`/sys/module/${vendorModule}/parameters/${tdpParam}`);
    } else if (!tdp) {
      mode = "shadow paging";
      why = `${vendorModule}.${tdpParam}=${tdpValue}: KVM shadows the guest's page tables`;
    } else if (kvm["tdp_mmu"] === undefined) {
      mode = "legacy TDP";
      why = `${vendorModule}.${tdpParam}=${tdpValue} and no kvm.tdp_mmu parameter (a kernel ` +
        "before 5.10 has no TDP MMU): the legacy TDP code of mmu.c";
    } else if (on(kvm["tdp_mmu"])) {
      mode = "TDP MMU";
      why = `${vendorModule}.${tdpParam}=${tdpValue}, kvm.tdp_mmu=${kvm["tdp_mmu"]}`;
    } else {
      mode = "legacy TDP";
      why = `${vendorModule}.${tdpParam}=${tdpValue}, kvm.tdp_mmu=${kvm["tdp_mmu"]}: the ` +
        "legacy TDP code of mmu.c";
    }
  }

  // The first processor's flags line is enough: every CPU of a guest has the flag.
  const cpuinfo = read("/proc/cpuinfo", /^flags\s*:.*\n/m);
  let nested: boolean | null = null;
  if (cpuinfo !== null) {
    const flags = /^flags\s*:(.*)$/m.exec(cpuinfo);
    nested = flags === null ? null : flags[1]!.split(/\s+/).includes("hypervisor");
  }

  const parts: string[] = [];
  parts.push(
    `Linux ${kernel ?? "(release unknown)"} ${vendorModule ?? "(no kvm vendor module)"}`,
  );
  if (mode !== "none") {
    const shown = Object.entries(from).map(([k, v]) => `${k.slice(k.indexOf(".") + 1)}=${v}`);
    parts.push(shown.length > 0 ? `${mode} (${shown.join(", ")})` : mode);
  } else parts.push("no MMU (KVM not loaded)");
  for (const p of ["enable_pmu", "mmio_caching"]) {
    if (kvm[p] !== undefined) parts.push(`${p}=${kvm[p]}`);
  }
  if (nested === true) parts.push("nested");
  const host: KvmHost = {
    format: "shadowfuzz.kvm-host/1",
    kernel,
    vendorModule,
    vendor,
    modules,
    mmu: { mode, tdp, from, why },
    nested,
    summary: parts.join(", "),
    absent,
    unreadable,
  };
  if (tdp) host.note = TDP_NOTE;
  return host;
}

const cache = new Map<string, KvmHost>();

function deepFreeze<T>(o: T): T {
  if (typeof o === "object" && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * The host record, read once per process (and per `root`) and frozen; copy it
 * (`structuredClone`) to change it. Never throws: what cannot be read is listed in
 * `absent` / `unreadable`.
 */
export function kvmHost(root = "/"): Readonly<KvmHost> {
  let h = cache.get(root);
  if (h === undefined) cache.set(root, h = deepFreeze(readKvmHost(root)));
  return h;
}
