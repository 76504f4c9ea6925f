/**
 * @module
 * What the oracle knows of a value in guest memory: one qword, or the bytes of a load.
 * Where the architecture let a backend choose (a cached translation that may have left an
 * A bit clear, a store that may have gone through a stale translation into another frame),
 * the oracle cannot know what memory holds. {@linkcode Uncertain} says what it may hold:
 *
 * - `value`: the value the oracle follows (the history in which every such choice went
 *   the canonical way); reads report it.
 * - `unknown`: the bits that may differ from `value` (a read reports them as don't care).
 * - `others`: the other whole values it may hold, in the order they became possible, at
 *   most {@linkcode MAX_OTHERS}. None listed means any combination of the `unknown` bits
 *   ({@linkcode Uncertain.otherValues}).
 * - `overflowed`: the list once grew past the cap; it stays empty (only the `unknown`
 *   bits say what the qword holds) until a whole-qword store makes the value known.
 *
 * Values are immutable: every operation returns a new one.
 */

/** More other values than this for one qword fall back to its unknown bits alone. */
export const MAX_OTHERS = 16;

/** Every bit of a qword. */
export const QWORD_MASK = (1n << 64n) - 1n;

const NONE: readonly bigint[] = Object.freeze([]);

/** A value the oracle knows only partly (see the module documentation). */
export class Uncertain {
  /** The value the oracle follows. */
  readonly value: bigint;
  /** The bits that may differ from `value`. */
  readonly unknown: bigint;
  /** The other whole values listed (never more than {@linkcode MAX_OTHERS}). */
  readonly others: readonly bigint[];
  /** The list outgrew the cap: only `unknown` says what the value may be. */
  readonly overflowed: boolean;

  private constructor(
    value: bigint,
    unknown: bigint,
    others: readonly bigint[],
    overflowed: boolean,
  ) {
    this.value = value;
    this.unknown = unknown;
    this.others = others;
    this.overflowed = overflowed;
  }

  /** A value the oracle knows exactly. */
  static known(value: bigint): Uncertain {
    return new Uncertain(value, 0n, NONE, false);
  }

  /** `value` with `unknown` bits that may differ, no other values listed. */
  static of(value: bigint, unknown: bigint): Uncertain {
    return new Uncertain(value, unknown, NONE, false);
  }

  /**
   * Either of two values, following `follow`'s: the unknown bits of both and every bit in
   * which they differ; the listed values of `a`, then of `b`, without the followed value.
   * If the followed value overflowed, or the list would outgrow {@linkcode MAX_OTHERS},
   * the result lists none and is overflowed.
   */
  static join(a: Uncertain, b: Uncertain, follow: "a" | "b"): Uncertain {
    const followed = follow === "a" ? a : b;
    const unknown = a.unknown | b.unknown | (a.value ^ b.value);
    if (followed.overflowed) return new Uncertain(followed.value, unknown, NONE, true);
    const others = [...new Set([...a.possible(), ...b.possible()])]
      .filter((v) => v !== followed.value);
    if (others.length > MAX_OTHERS) return new Uncertain(followed.value, unknown, NONE, true);
    return new Uncertain(followed.value, unknown, others.length > 0 ? others : NONE, false);
  }

  /** Known exactly: no unknown bits, no other values, never overflowed. */
  get isKnown(): boolean {
    return this.unknown === 0n && this.others.length === 0 && !this.overflowed;
  }

  /** The followed value, then the other values listed. */
  possible(): readonly bigint[] {
    return this.others.length === 0 ? [this.value] : [this.value, ...this.others];
  }

  /**
   * The other values a reader must consider, ignoring differences in the `ignored` bits
   * (a walk ignores A/D): none if every unknown bit is ignored; else the listed values
   * that differ outside `ignored`; else (none listed) `value` with each subset of the
   * unknown bits ({@linkcode unknownSubsets}) flipped.
   */
  otherValues(ignored: bigint): bigint[] {
    const unknown = this.unknown & ~ignored;
    if (unknown === 0n) return [];
    if (this.others.length > 0) {
      return this.others.filter((v) => ((v ^ this.value) & ~ignored) !== 0n);
    }
    return unknownSubsets(unknown).map((flip) => this.value ^ flip);
  }

  /** The same, with the `mask` bits unknown too. */
  withUnknownBits(mask: bigint): Uncertain {
    if ((this.unknown | mask) === this.unknown) return this;
    return new Uncertain(this.value, this.unknown | mask, this.others, this.overflowed);
  }

  /** The same, with the `mask` bits known (at their followed value). */
  withKnownBits(mask: bigint): Uncertain {
    if ((this.unknown & mask) === 0n) return this;
    return new Uncertain(this.value, this.unknown & ~mask, this.others, this.overflowed);
  }

  /**
   * The followed value replaced, everything else kept: the walk's own A/D update of the
   * value it used, which the other values (other histories) do not see.
   */
  withValue(value: bigint): Uncertain {
    return new Uncertain(value, this.unknown, this.others, this.overflowed);
  }

  /**
   * After a store that certainly landed: the `mask` bits take `bits` in every value and
   * are known. A whole qword stored ({@linkcode QWORD_MASK}) is known exactly; a partial
   * store keeps the other values (with its bits) and the overflow.
   */
  stored(mask: bigint, bits: bigint): Uncertain {
    const value = (this.value & ~mask) | bits;
    if (mask === QWORD_MASK) return Uncertain.known(value);
    return new Uncertain(
      value,
      this.unknown & ~mask,
      this.others.length === 0 ? NONE : this.others.map((v) => (v & ~mask) | bits),
      this.overflowed,
    );
  }

  /**
   * After a store that may or may not have landed here: the value before and the value
   * after it are both possible ({@linkcode Uncertain.join}, before first). `landed`:
   * whether the oracle follows the history in which it did.
   */
  mayStore(mask: bigint, bits: bigint, landed: boolean): Uncertain {
    return Uncertain.join(this, this.stored(mask, bits), landed ? "b" : "a");
  }

  /**
   * Only the other values `keep` accepts stay listed. When none is left the followed
   * value is the only one: its unknown bits other than `stillUnknown` are known again.
   * Nothing changes when none was listed.
   */
  narrowed(keep: (v: bigint) => boolean, stillUnknown: bigint): Uncertain {
    if (this.others.length === 0) return this;
    const left = this.others.filter(keep);
    if (left.length > 0) return new Uncertain(this.value, this.unknown, left, this.overflowed);
    return new Uncertain(this.value, this.unknown & stillUnknown, NONE, this.overflowed);
  }
}

/**
 * The non-empty subsets of the `unknown` bits, as masks to flip: of single bits when
 * there are at most 6 of them, else of the bytes that hold any (at most 255). Each is a
 * value the qword may hold when some of the stores that made those bits unknown landed
 * there and others did not.
 */
export function unknownSubsets(unknown: bigint): bigint[] {
  const parts: bigint[] = [];
  for (let b = 0n; b < 64n; b++) if ((unknown >> b) & 1n) parts.push(1n << b);
  if (parts.length > 6) {
    parts.length = 0;
    for (let i = 0n; i < 8n; i++) {
      const byte = unknown & (0xffn << (8n * i));
      if (byte !== 0n) parts.push(byte);
    }
  }
  const out: bigint[] = [];
  for (let m = 1; m < 1 << parts.length; m++) {
    let flip = 0n;
    for (let j = 0; j < parts.length; j++) if (m & (1 << j)) flip |= parts[j]!;
    out.push(flip);
  }
  return out;
}
