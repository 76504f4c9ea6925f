/**
 * @module
 * Hex numbers as the trace format writes them: `0x` followed by 1 to 16 hex digits,
 * case-insensitive on input, lowercase on output. Private to `src/trace`.
 */

/** The largest unsigned 64-bit value. */
export const U64_MAX = (1n << 64n) - 1n;

/** At most 16 digits, so every match fits in 64 bits without a range check. */
const HEX64 = /^0x[0-9a-f]{1,16}$/i;

/** Whether `text` is a 64-bit hex string (`0x` and 1..16 hex digits). */
export function isHex64(text: string): boolean {
  return HEX64.test(text);
}

/** The value of a 64-bit hex string, or `undefined` if `text` is not one. */
export function parseHex64(text: string): bigint | undefined {
  return HEX64.test(text) ? BigInt(text) : undefined;
}

/** `value` as canonical lowercase hex with a `0x` prefix (`0x0` for zero). */
export function hex(value: bigint | number): string {
  return "0x" + value.toString(16);
}
