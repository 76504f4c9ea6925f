/**
 * @module
 * `pte_list_desc` chains (docs/kvm-facts.md B.4; mmu.c `pte_list_add`/`pte_list_remove`): the
 * list structure of rmaps (gfn -> leaf sptes) and of shadow pages' `parent_ptes`.
 *
 * A list head is a number: 0 = empty; even = one spte, `(sptep + 1) * 2` (KVM: bit 0
 * clear = a single `u64 *sptep`); odd = `desc * 2 + 1` (KVM: bit 0 set = a pointer to a
 * desc). A desc holds up to `PTE_LIST_EXT` = 14 sptes; only the head desc may be
 * partially filled, every desc behind it is full, and the head's `tail_count` is the
 * number of sptes behind it. Adds go into the head; a remove moves the head's last
 * entry into the hole and frees the head when it empties. An `sptep` is a global spte
 * index (shadow page * 512 + index).
 */

/** Entries per desc (KVM: fits one 128-byte cache line). */
export const PTE_LIST_EXT = 14;

export class PteListPool {
  more = new Int32Array(64);
  count = new Uint8Array(64);
  tail = new Int32Array(64);
  sptes = new Int32Array(64 * PTE_LIST_EXT);
  #free: number[] = [];
  #next = 1; // desc 0 is never used, so a head of 1 would be malformed
  /** Descs in use (for the audit). */
  inUse = 0;

  #alloc(): number {
    this.inUse++;
    const d = this.#free.pop();
    if (d !== undefined) return d;
    if (this.#next === this.more.length) {
      const cap = this.more.length * 2;
      const more = new Int32Array(cap), count = new Uint8Array(cap), tail = new Int32Array(cap);
      const sptes = new Int32Array(cap * PTE_LIST_EXT);
      more.set(this.more);
      count.set(this.count);
      tail.set(this.tail);
      sptes.set(this.sptes);
      this.more = more;
      this.count = count;
      this.tail = tail;
      this.sptes = sptes;
    }
    return this.#next++;
  }

  #freeDesc(d: number): void {
    this.inUse--;
    this.#free.push(d);
  }

  /** Adds `sptep`; returns the new head. `lengthAfter` gets the list length. */
  add(head: number, sptep: number): number {
    if (head === 0) {
      this.lengthAfter = 1;
      return (sptep + 1) * 2;
    }
    if ((head & 1) === 0) {
      const d = this.#alloc();
      this.more[d] = 0;
      this.tail[d] = 0;
      this.count[d] = 2;
      this.sptes[d * PTE_LIST_EXT] = head / 2 - 1;
      this.sptes[d * PTE_LIST_EXT + 1] = sptep;
      this.lengthAfter = 2;
      return d * 2 + 1;
    }
    const h = (head - 1) / 2;
    const c = this.count[h]!;
    if (c === PTE_LIST_EXT) {
      const d = this.#alloc();
      this.more[d] = h;
      this.tail[d] = this.tail[h]! + PTE_LIST_EXT;
      this.count[d] = 1;
      this.sptes[d * PTE_LIST_EXT] = sptep;
      this.lengthAfter = this.tail[d]! + 1;
      return d * 2 + 1;
    }
    this.sptes[h * PTE_LIST_EXT + c] = sptep;
    this.count[h] = c + 1;
    this.lengthAfter = this.tail[h]! + c + 1;
    return head;
  }

  /** Set by `add`: the list length after the add. */
  lengthAfter = 0;

  /** The list length. */
  length(head: number): number {
    if (head === 0) return 0;
    if ((head & 1) === 0) return 1;
    const h = (head - 1) / 2;
    return this.count[h]! + this.tail[h]!;
  }

  /**
   * Removes `sptep`; returns the new head. Removing an absent entry is KVM's BUG
   * ("pte_list_remove: %p 0->BUG"): it throws, which the diff runner reports as a crash.
   */
  remove(head: number, sptep: number): number {
    if (head === 0) throw new Error(`pte_list_remove: spte ${sptep} 0->BUG`);
    if ((head & 1) === 0) {
      if (head / 2 - 1 !== sptep) throw new Error(`pte_list_remove: spte ${sptep} 1->BUG`);
      return 0;
    }
    const h = (head - 1) / 2;
    for (let d = h; d !== 0; d = this.more[d]!) {
      const c = this.count[d]!;
      for (let i = 0; i < c; i++) {
        if (this.sptes[d * PTE_LIST_EXT + i] !== sptep) continue;
        const hc = this.count[h]! - 1;
        this.sptes[d * PTE_LIST_EXT + i] = this.sptes[h * PTE_LIST_EXT + hc]!;
        this.count[h] = hc;
        if (hc > 0) return head;
        const more = this.more[h]!;
        this.#freeDesc(h);
        return more === 0 ? 0 : more * 2 + 1;
      }
    }
    throw new Error(`pte_list_remove: spte ${sptep} many->BUG`);
  }

  /** Copies the entries into `into` (grown if needed); returns the count. */
  collect(head: number, into: { buf: Int32Array }): number {
    const n = this.length(head);
    if (into.buf.length < n) into.buf = new Int32Array(n * 2);
    if (n === 0) return 0;
    if ((head & 1) === 0) {
      into.buf[0] = head / 2 - 1;
      return 1;
    }
    let k = 0;
    for (let d = (head - 1) / 2; d !== 0; d = this.more[d]!) {
      const c = this.count[d]!;
      for (let i = 0; i < c; i++) into.buf[k++] = this.sptes[d * PTE_LIST_EXT + i]!;
    }
    return k;
  }

  /** Frees every desc of a list (KVM `kvm_zap_all_rmap_sptes` frees the chain). */
  freeAll(head: number): void {
    if ((head & 1) === 0) return;
    for (let d = (head - 1) / 2; d !== 0;) {
      const next = this.more[d]!;
      this.#freeDesc(d);
      d = next;
    }
  }

  /** Whether the list has more than one desc (a coverage shape). */
  isChain(head: number): boolean {
    return (head & 1) === 1 && this.more[(head - 1) / 2] !== 0;
  }
}
