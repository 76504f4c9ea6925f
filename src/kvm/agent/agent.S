# shadowfuzz kvm guest agent (GNU as, x86-64, position independent).
#
# Runs in 64-bit long mode at CPL 0 with CR3 = the trace's page-table root (or the
# agent's own root while the trace root is outside every memslot). It executes a batch
# of commands the host wrote into the command buffer, each recording its result in its
# own record, and leaves with `out` to EXIT_PORT (KVM_EXIT_IO) at the final command;
# re-entering KVM_RUN starts the next batch.
#
# The guest runs under kvm_pvm at roughly half a microsecond per instruction, so the
# per-command path is kept to a handful of instructions: the host writes the address
# of the routine into each command (read from `routines` below), picks the routine per
# access size, and pre-fills the status a successful command leaves.
#
# Layout (offsets from the agent base, which is both AGENT_GPA and AGENT_GVA; layout.ts
# uses the same numbers):
#   0x0000 code (this file)                   0x1000 exception vectors + handler
#   0x2000 ring-3 stubs (the only U=1 page)   0x3000 GDT, TSS at 0x3100
#   0x4000 IDT                                0x5000 data (D_* below)
#   0x6000-0x7000 loop stack                  0x7000-0x8000 ring-0 stack for ring-3 faults
#   0x8000-0x48000 command records (64 bytes each)
#
# Record: +0 routine address, +8 addr, +16 value, +24 aux (ring-3 stub address or ctl
# mask); result: +32 u32 status (pre-filled by the host: 0 ok, 1 value; 2 exception;
# fetches also 3-5, see FETCHES), +36 u32 vector, +40 value (or faulting rip), +48 error
# code (or rip after a stray fetch), +56 cr2 (or rsp after a stray fetch).
#
# r12 points at the current record throughout (exceptions and ring-3 trips keep GPRs);
# the host reads it (KVM_GET_REGS) to attribute an MMIO exit to a command.

        .code64
        .text

        .set DATA, 0x5000
        .set D_SAVED_RSP, 8
        .set D_RFLAGS, 16
        .set D_PHASE, 24                # fetch phase: 0 none, 1 check load, 2 the fetch
        .set D_FETCH_RSP, 32            # rsp the verified ret leaves (the #DB checks it)
        .set D_FETCH_RIP, 40            # rip the verified ret leaves
        .set FETCH_SLOT, 0x6800         # ring-0 fetch: the ret pops fetch_back from here
        .set USER_SLOT, 0x2ff8          # ring-3 fetch: the ret pops u_fetch_back from here
        .set AGENT_GVA, 0xffffff8000000000
        .set S_VALUE, 1
        .set S_EXCEPTION, 2
        .set S_NOT_RET, 3               # the check load read a first byte other than ret
        .set S_UNVERIFIED, 4            # the check load faulted (the fetch decides)
        .set S_STRAY, 5                 # the instruction the fetch ran was not that ret
        .set KERNEL_CS, 0x08
        .set KERNEL_SS, 0x10
        .set LOOP_STACK_TOP, 0x7000
        .set CMD, 0x8000
        .set REC, 64
        .set EXIT_PORT, 0x10
        .set USER_CS, 0x23
        .set USER_SS, 0x1b

# Advance to the next record and run it.
        .macro NEXT
        add $REC, %r12
        jmp *(%r12)
        .endm

# CTLBIT m, b, reg: if bit m of the ctl mask (r8) is set, copy bit m of the ctl values
# (r9) into bit b of reg.
        .macro CTLBIT m, b, reg
        bt $\m, %r8
        jnc 9f
        btr $\b, \reg
        bt $\m, %r9
        jnc 9f
        bts $\b, \reg
9:
        .endm

base:
        jmp entry

# Routine offsets, indexed by the command kinds of layout.ts (K_*).
        .org 0x10
routines:
        .long done - base               # 0  end of batch
        .long op_load1 - base           # 1
        .long op_load2 - base           # 2
        .long op_load4 - base           # 3
        .long op_load8 - base           # 4
        .long op_store1 - base          # 5
        .long op_store2 - base          # 6
        .long op_store4 - base          # 7
        .long op_store8 - base          # 8
        .long op_user - base            # 9  aux = ring-3 stub
        .long op_invlpg - base          # 10
        .long op_cr3 - base             # 11
        .long op_ctl - base             # 12
        .long op_wrmsr - base           # 13
        .long op_rdmsr - base           # 14
        .long op_rdpmc - base           # 15
        .long u_load1 - base            # 16 ring-3 stubs (for aux)
        .long u_load2 - base            # 17
        .long u_load4 - base            # 18
        .long u_load8 - base            # 19
        .long u_store1 - base           # 20
        .long u_store2 - base           # 21
        .long u_store4 - base           # 22
        .long u_store8 - base           # 23
        .long u_rdpmc - base            # 24
# (Kinds 25 and up: routines2 below, so that the code here keeps its offsets.)

entry:
        lea base(%rip), %rbx
        lea DATA(%rbx), %r15
        lea LOOP_STACK_TOP(%rbx), %rsp
        mov %rsp, D_SAVED_RSP(%r15)
batch:
        lea base(%rip), %rbx
        lea CMD(%rbx), %r12
        # The trace's EFLAGS.AC (and IF=0) for the whole batch.
        pushq D_RFLAGS(%r15)
        popfq
        jmp *(%r12)

done:
        out %al, $EXIT_PORT
        jmp batch

op_load1:
        mov 8(%r12), %rdi
        movzbl (%rdi), %eax
        mov %rax, 40(%r12)
        NEXT
op_load2:
        mov 8(%r12), %rdi
        movzwl (%rdi), %eax
        mov %rax, 40(%r12)
        NEXT
op_load4:
        mov 8(%r12), %rdi
        mov (%rdi), %eax
        mov %rax, 40(%r12)
        NEXT
op_load8:
        mov 8(%r12), %rdi
        mov (%rdi), %rax
        mov %rax, 40(%r12)
        NEXT

op_store1:
        mov 8(%r12), %rdi
        mov 16(%r12), %rsi
        mov %sil, (%rdi)
        NEXT
op_store2:
        mov 8(%r12), %rdi
        mov 16(%r12), %rsi
        mov %si, (%rdi)
        NEXT
op_store4:
        mov 8(%r12), %rdi
        mov 16(%r12), %rsi
        mov %esi, (%rdi)
        NEXT
op_store8:
        mov 8(%r12), %rdi
        mov 16(%r12), %rsi
        mov %rsi, (%rdi)
        NEXT

# Ring-3 ops: iretq to the stub in aux; the stub ends with ud2, whose #UD brings the
# agent back to ring 0 (under kvm_pvm `int n` from ring 3 arrives as #UD anyway,
# docs/measurements.md). The ring-3 RSP is 0: no stub touches the stack.
op_user:
        mov 8(%r12), %rdi
        mov 16(%r12), %rsi
        mov 8(%r12), %rcx
        pushq $USER_SS
        pushq $0
        pushq D_RFLAGS(%r15)
        pushq $USER_CS
        pushq 24(%r12)
        iretq

user_done:
        mov %rax, 40(%r12)
resume:
        mov D_SAVED_RSP(%r15), %rsp
        pushq D_RFLAGS(%r15)
        popfq
        NEXT

op_invlpg:
        mov 8(%r12), %rdi
        invlpg (%rdi)
        NEXT

op_cr3:
        mov 8(%r12), %rdi
        mov %rdi, %cr3
        NEXT

# ctl: aux = mask, value = new bits; bit 0 CR0.WP, 1 CR4.SMEP, 2 CR4.SMAP, 3 EFER.NXE,
# 4 EFLAGS.AC, 5 CR4.PCE. CR4 goes first: it is the only write that may #GP, and then
# nothing has changed yet (the op is atomic). A register is written only if it changes.
op_ctl:
        mov 24(%r12), %r8
        mov 16(%r12), %r9
        mov %cr4, %rax
        mov %rax, %rbx
        CTLBIT 1, 20, %rbx
        CTLBIT 2, 21, %rbx
        CTLBIT 5, 8, %rbx
        cmp %rax, %rbx
        je 1f
        mov %rbx, %cr4
1:      mov %cr0, %rax
        mov %rax, %rbx
        CTLBIT 0, 16, %rbx
        cmp %rax, %rbx
        je 2f
        mov %rbx, %cr0
2:      mov $0xc0000080, %ecx
        rdmsr
        mov %rax, %rbx
        CTLBIT 3, 11, %rbx
        cmp %rax, %rbx
        je 3f
        mov %rbx, %rax
        wrmsr
3:      mov D_RFLAGS(%r15), %rbx
        CTLBIT 4, 18, %rbx
        mov %rbx, D_RFLAGS(%r15)
        jmp resume

op_wrmsr:
        mov 8(%r12), %ecx
        mov 16(%r12), %eax
        mov 20(%r12), %edx
        wrmsr
        NEXT

op_rdmsr:
        mov 8(%r12), %ecx
        rdmsr
        jmp edx_eax

op_rdpmc:
        mov 8(%r12), %ecx
        rdpmc
edx_eax:
        mov %eax, 40(%r12)
        mov %edx, 44(%r12)
        NEXT

# FETCHES (README.md "Fetches"). The agent never executes a byte it has not read as a
# ret (0xc3) through the same linear address just before:
#  1. the check: a load of the fetch's size at the gva, from ring 3 for a user fetch (a
#     u_load stub through op_user), from ring 0 with EFLAGS.AC=1 for a supervisor one
#     (SMAP does not apply to fetches, SDM vol. 3A 4.6). Its first byte must be 0xc3,
#     else the command ends with S_NOT_RET and nothing runs. An MMIO exit completes the
#     load with zeros: not a ret either.
#  2. the fetch: iretq to the gva (CPL 0 or 3) with EFLAGS.TF=1 and a stack whose top is
#     the agent's return address. The single-step #DB (SDM vol. 3A 18.3.1.4) comes right
#     after the first instruction: it was the verified ret iff rip and rsp are exactly
#     what the ret leaves; anything else ends the command with S_STRAY (one instruction
#     ran, nothing after it). A #PF of the fetch is recorded as for any access.
# When the check faults (#PF), no translation of the gva permits a load, and a fetch
# needs at least the same rights (user: U; supervisor: P), so the fetch faults too: it
# still runs, with TF, to report the fetch's own error code; should it succeed anyway,
# the command ends with S_UNVERIFIED (the one instruction TF let run is all that ran).
        .macro FETCH load
        mov 8(%r12), %rdi
        movl $1, D_PHASE(%r15)
        mov D_RFLAGS(%r15), %rax
        bts $18, %rax
        push %rax
        popfq
        \load
        jmp fetch_checked
        .endm
op_fetch1:
        FETCH "movzbl (%rdi), %eax"
op_fetch2:
        FETCH "movzwl (%rdi), %eax"
op_fetch4:
        FETCH "mov (%rdi), %eax"
op_fetch8:
        FETCH "mov (%rdi), %rax"

op_ufetch:
        movl $1, D_PHASE(%r15)
        jmp op_user

# The check's bytes are in rax (ring 0, any stack).
fetch_checked:
        mov %rax, 40(%r12)
        cmpb $0xc3, %al
        je fetch_go
        movl $0, D_PHASE(%r15)
        movl $S_NOT_RET, 32(%r12)
        jmp resume

fetch_go:
        movl $2, D_PHASE(%r15)
        lea base(%rip), %rbx
        mov D_SAVED_RSP(%r15), %rsp
        testb $1, 16(%r12)
        jnz 1f
        lea FETCH_SLOT(%rbx), %rcx
        lea fetch_back(%rip), %rax
        mov %rax, (%rcx)
        mov $KERNEL_CS, %edx
        mov $KERNEL_SS, %esi
        jmp 2f
1:      lea USER_SLOT(%rbx), %rcx
        lea u_fetch_back(%rip), %rax
        mov $USER_CS, %edx
        mov $USER_SS, %esi
2:      mov %rax, D_FETCH_RIP(%r15)
        lea 8(%rcx), %rax
        mov %rax, D_FETCH_RSP(%r15)
        # iretq frame: ss, rsp (its top holds the return address), rflags (the trace's,
        # with TF), cs, rip = the gva.
        push %rsi
        push %rcx
        mov D_RFLAGS(%r15), %rax
        bts $8, %rax
        push %rax
        push %rdx
        pushq 8(%r12)
        iretq

# The verified ret came back (from the #DB handler, or directly were TF not honoured).
fetch_back:
        movl $0, D_PHASE(%r15)
        jmp resume

# Routine offsets of kinds 25 and up (layout.ts OFF_ROUTINES2).
        .org 0xf80
routines2:
        .long op_fetch1 - base          # 25 supervisor fetches (check load size 1..8)
        .long op_fetch2 - base          # 26
        .long op_fetch4 - base          # 27
        .long op_fetch8 - base          # 28
        .long op_ufetch - base          # 29 user fetch, aux = ring-3 load stub (the check)
        .long u_fetch_back - base       # 30 where a ring-3 fetch's ret returns (USER_SLOT)

# Exception vectors 0-31, 16 bytes apart (the host builds the IDT from that spacing).
# Each pushes a dummy error code when the CPU pushes none, then the vector number.
        .org 0x1000
vectors:
        .set vec, 0
        .rept 32
        .p2align 4
        .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
        pushq $vec
        .else
        pushq $0
        pushq $vec
        .endif
        jmp common
        .set vec, vec + 1
        .endr

# Stack: vector, error code, rip, cs, rflags, rsp, ss. A #UD from ring 3 is the end of
# a ring-3 stub; everything else is recorded in the current record, whose command is
# then abandoned (the batch goes on with the next record on a fresh stack).
common:
        cmpl $0, D_PHASE(%r15)
        jne fetch_exception
        cmpq $6, 0(%rsp)
        jne 1f
        testb $3, 24(%rsp)
        jnz user_done
record:
1:      movl $0, D_PHASE(%r15)
        movl $2, 32(%r12)
        mov 0(%rsp), %rbx
        movl %ebx, 36(%r12)
        mov 16(%rsp), %rbx
        mov %rbx, 40(%r12)
        mov 8(%rsp), %rbx
        mov %rbx, 48(%r12)
        mov %cr2, %rbx
        mov %rbx, 56(%r12)
        jmp resume

# An exception during a fetch command.
fetch_exception:
        cmpl $1, D_PHASE(%r15)
        jne 3f
        # The check. Its ring-3 load ends with the stub's ud2: rax holds the bytes.
        cmpq $6, 0(%rsp)
        jne 2f
        testb $3, 24(%rsp)
        jnz fetch_checked
2:      # A #PF of the check: the fetch itself decides (it faults unless KVM errs).
        cmpq $14, 0(%rsp)
        jne record
        movl $S_UNVERIFIED, 32(%r12)
        jmp fetch_go
3:      # The fetch. After one instruction (#DB), or a ring-3 ret that reached
        # u_fetch_back's ud2 without the #DB: the verified ret iff rip and rsp are its.
        cmpq $1, 0(%rsp)
        je 4f
        cmpq $6, 0(%rsp)
        jne record
        testb $3, 24(%rsp)
        jz record
        mov 16(%rsp), %rax
        cmp D_FETCH_RIP(%r15), %rax
        jne 5f
        mov 40(%rsp), %rax
        cmp D_FETCH_RSP(%r15), %rax
        je fetch_back
        jmp 5f
4:      mov 16(%rsp), %rax
        cmp D_FETCH_RIP(%r15), %rax
        jne 5f
        mov 40(%rsp), %rax
        cmp D_FETCH_RSP(%r15), %rax
        je fetch_back
5:      movl $0, D_PHASE(%r15)
        movl $S_STRAY, 32(%r12)
        mov 16(%rsp), %rax
        mov %rax, 48(%r12)
        mov 40(%rsp), %rax
        mov %rax, 56(%r12)
        jmp resume

# Ring-3 stubs: the only page mapped with U=1. rdi = address, rsi = value, ecx = rdpmc
# index. Loads leave the value in rax.
        .org 0x2000
u_load1:
        movzbl (%rdi), %eax
        ud2
u_load2:
        movzwl (%rdi), %eax
        ud2
u_load4:
        mov (%rdi), %eax
        ud2
u_load8:
        mov (%rdi), %rax
        ud2
u_store1:
        mov %sil, (%rdi)
        ud2
u_store2:
        mov %si, (%rdi)
        ud2
u_store4:
        mov %esi, (%rdi)
        ud2
u_store8:
        mov %rsi, (%rdi)
        ud2
u_rdpmc:
        rdpmc
        shl $32, %rdx
        mov %eax, %eax
        or %rdx, %rax
        ud2
# A ring-3 fetch's ret returns here; the #DB normally comes first.
u_fetch_back:
        ud2
# The ring-3 fetch's stack: its ret pops this (an absolute address, so it assumes the
# agent base AGENT_GVA of layout.ts).
        .org USER_SLOT
        .quad AGENT_GVA + (u_fetch_back - base)
