/**
 * @module
 * The libc calls of the kvm backend through Deno FFI (`--allow-ffi`): open, close, read, pread,
 * ioctl, mmap, munmap, madvise, memcmp, errno via `__errno_location`, the KVM_RUN watchdog's
 * POSIX timer and signal-mask calls (timer_create/settime/gettime/delete, gettid,
 * pthread_sigmask, sigtimedwait; glibc >= 2.34 has them in libc.so.6) and the directory
 * calls the host record needs (opendir, readdir, closedir). Loaded lazily, once per
 * process; nothing happens at import time.
 */

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // ioctl is variadic; on x86-64 SysV a fixed third integer/pointer argument is passed
  // exactly as a variadic one, so two non-variadic views of the same symbol suffice.
  ioctl_buf: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  ioctl_int: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  mmap: {
    parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"],
    result: "pointer",
  },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  memcmp: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  // The watchdog (vm.ts). timer_t is an opaque `void *` in glibc, passed back as usize.
  timer_create: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  timer_settime: { parameters: ["usize", "i32", "buffer", "buffer"], result: "i32" },
  timer_gettime: { parameters: ["usize", "buffer"], result: "i32" },
  timer_delete: { parameters: ["usize"], result: "i32" },
  gettid: { parameters: [], result: "i32" },
  pthread_sigmask: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  sigtimedwait: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  // The host record (host.ts): sysfs directories.
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir: { parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Lib | null = null;

/** The libc symbols; throws if FFI is not permitted or libc.so.6 cannot be opened. */
export function libc(): Lib {
  if (lib === null) lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  return lib;
}

/** The calling thread's errno (read right after the failing call). */
export function errno(): number {
  const p = libc().__errno_location();
  if (p === null) return 0;
  return new Deno.UnsafePointerView(p).getInt32(0);
}

/** A NUL-terminated C string. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** The address of an mmap result, or -1n for MAP_FAILED. */
export function pointerAddress(p: Deno.PointerValue): bigint {
  if (p === null) return 0n;
  const v = Deno.UnsafePointer.value(p);
  return BigInt(v);
}

/** A pointer for a raw address (MAP_FIXED hints, munmap, madvise). */
export function addressPointer(address: bigint): Deno.PointerValue {
  return Deno.UnsafePointer.create(address);
}

/** MAP_FAILED is `(void *)-1`. */
export const MAP_FAILED = 0xffffffffffffffffn;

/** A view of `length` bytes of process memory at `address` (no copy). */
export function memoryView(address: bigint, length: number): ArrayBuffer {
  const p = Deno.UnsafePointer.create(address);
  if (p === null) throw new RangeError("Cannot view memory: null address");
  return Deno.UnsafePointerView.getArrayBuffer(p, length);
}
