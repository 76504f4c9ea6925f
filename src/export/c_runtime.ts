/**
 * @module
 * The C text of a standalone reproducer apart from its data: the engine, a port of the
 * kvm backend's host side (`src/kvm/backend.ts` for one op per KVM_RUN, as `step` runs
 * it, and `src/kvm/vm.ts`: agent memory, CPUID filter, long-mode sregs, KVM_RUN loop),
 * the judge (`matchesPermitted` of `src/trace/outcome.ts`) and the report. The guest side
 * is the repo's agent itself (its bytes are embedded by `c.ts`), spoken to through the same
 * 64-byte command records. Two platform layers: plain libc + <linux/kvm.h> (`--format c`)
 * and the KVM selftest library (`--format selftest`).
 *
 * Every number the engine needs comes from `c.ts` as a `#define` generated from
 * `src/kvm/layout.ts` and `src/kvm/uapi.ts`, so that the agent and the C side cannot drift
 * apart. Placeholders are `@NAME@`; the text is String.raw, so C escapes stay as written.
 */

/** Types shared by the data and the engine. */
export const ENGINE_TYPES = String.raw`
/* ---- types ------------------------------------------------------------------ */

enum { SF_OP_GUEST, SF_OP_CR3, SF_OP_SLOT, SF_OP_DIRTYLOG, SF_OP_DISCARD, SF_OP_FILTER };
enum { SF_CHECK_NONE, SF_CHECK_PHYS, SF_CHECK_WALK };
enum {
	SF_O_ERRNO, SF_O_OK, SF_O_VALUE, SF_O_MMIO, SF_O_PF, SF_O_GP, SF_O_BITMAP,
	SF_O_YOUNG, SF_O_COUNT, SF_O_CRASH, SF_O_NONE
};

/* One trace op. Guest ops carry their agent command (backend.ts #add); host ops
 * their ioctl arguments, with the hva relocation already applied by the exporter. */
struct sf_op {
	int index;             /* the op's index in the trace */
	int kind;              /* SF_OP_* */
	const char *text;      /* formatOp */
	/* SF_OP_GUEST: routine, operands, the status success leaves */
	int routine;           /* K_* */
	int aux_routine;       /* U_* whose gva goes into aux, or -1 (aux is raw) */
	uint64_t addr, value, aux;
	uint32_t status;
	int check;             /* the backend's state check before the op */
	uint64_t check_addr;
	uint32_t check_size;
	const char *check_what;
	/* SF_OP_CR3: addr = the CR3 value. SF_OP_SLOT, SF_OP_DIRTYLOG: */
	uint32_t id, flags;
	uint64_t gpa, size, hva, pages;
	int in_window;         /* hva in the window: host = window base + win_off */
	uint64_t win_off;
	/* SF_OP_DISCARD: the part of [hva, hva + pages * 4096) inside the window */
	int discard_in;
	uint64_t discard_off, discard_len;
	/* SF_OP_FILTER */
	uint32_t action, fixed, fflags, nevents;
	int events_first;
	/* the judgement */
	int perm_first, perm_count;
	int followed;          /* the permitted entry the exporter's reference followed */
	int branch_free;       /* the reference's later state does not depend on the entry */
	int committed_known;   /* committed_value: the value it committed (don't-care bits) */
	uint64_t committed_value;
};

/* One permitted outcome (src/backend.ts Permitted). */
struct sf_perm {
	int kind;              /* SF_O_* */
	uint64_t a, b;         /* value | mmio gpa, write | pf code, cr2 | count */
	const char *name;      /* errno name ("0" for success) */
	uint64_t dont_care;    /* value: bits that may differ */
	int runs_first, runs_count;  /* bitmap, young: pages, as runs in sf_runs */
	int dc_first, dc_count;      /* don't-care pages */
	const char *text;      /* formatPermitted */
};

/* An observed outcome. */
struct sf_out {
	int kind;
	uint64_t a, b;
	const char *name;
	uint64_t (*runs)[2];
	size_t nruns;
	char msg[768];
};

/* ---- state ------------------------------------------------------------------ */

#define SF_NONE 0ULL  /* no host page (a host address is never 0) */

struct sf_slot { uint32_t id; uint64_t gpa, pages, host; };
struct sf_installed { uint64_t page, saved[2]; };
struct sf_cmd { int op; int routine; uint64_t addr, value, aux; uint32_t status; };

static uint8_t *sf_agent;              /* host view of the agent region */
static uint64_t sf_window_base;        /* host address of trace hva SF_HVA_WINDOW_START */
static uint64_t sf_direct_limit;
static uint64_t sf_routines[SF_ROUTINE_COUNT];
static uint64_t sf_agent_entries[2];
static uint64_t sf_trace_cr3, sf_vcpu_cr3;
static struct sf_slot sf_slots[SF_MAX_SLOTS];
static int sf_nslots;
static struct sf_installed sf_inst[64];
static int sf_ninst;
static struct sf_cmd sf_batch[8];
static int sf_nbatch;
static char sf_dead[700];
static unsigned sf_watchdog_ms = SF_KVM_WATCHDOG_MS;
static volatile sig_atomic_t sf_alarms;
static int sf_verbose;


/* Defined by the engine, used by the platform layer (and the other way round). */
static const char *sf_errno_name(int n);
static void sf_check_host(const struct kvm_cpuid2 *c);
static void sf_filter_cpuid(struct kvm_cpuid2 *c);
static void sf_build_agent(void);
static void sf_cannot(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
`;

/** The engine: host side of the kvm backend, the judge and the report. */
export const ENGINE_BODY = String.raw`
static const char *sf_errno_name(int n)
{
	static char buf[24];
	for (size_t i = 0; i < sizeof(sf_errno_names) / sizeof(sf_errno_names[0]); i++)
		if (sf_errno_names[i].n == n)
			return sf_errno_names[i].name;
	snprintf(buf, sizeof(buf), "errno %d", n);
	return buf;
}

/* The name of an ioctl errno as an outcome (backend.ts errnoOutcome). */
static const char *sf_errno_outcome(int n, char buf[24])
{
	if (n == 0)
		return "0";
	for (size_t i = 0; i < sizeof(sf_errno_names) / sizeof(sf_errno_names[0]); i++)
		if (sf_errno_names[i].n == n)
			return sf_errno_names[i].name;
	snprintf(buf, 24, "E%d", n);
	return buf;
}

static uint64_t sf_get64(uint64_t host) { uint64_t v; memcpy(&v, (void *)(uintptr_t)host, 8); return v; }
static void sf_put64(uint64_t host, uint64_t v) { memcpy((void *)(uintptr_t)host, &v, 8); }
static uint64_t sf_agent_host(void) { return (uint64_t)(uintptr_t)sf_agent; }
static uint32_t sf_agent32(unsigned off) { uint32_t v; memcpy(&v, sf_agent + off, 4); return v; }
static void sf_agent_put32(unsigned off, uint32_t v) { memcpy(sf_agent + off, &v, 4); }
static void sf_agent_put16(unsigned off, uint16_t v) { memcpy(sf_agent + off, &v, 2); }
static uint64_t sf_agent64(unsigned off) { return sf_get64(sf_agent_host() + off); }
static void sf_agent_put64(unsigned off, uint64_t v) { sf_put64(sf_agent_host() + off, v); }

static void sf_crash(struct sf_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sf_crash(struct sf_out *o, const char *fmt, ...)
{
	va_list ap;
	o->kind = SF_O_CRASH;
	va_start(ap, fmt);
	vsnprintf(o->msg, sizeof(o->msg), fmt, ap);
	va_end(ap);
}

/* ---- the agent (vm.ts #buildAgent) -------------------------------------------- */

/* Page-table entry bits (SDM vol. 3A 4.5). */
#define SF_P  (1ULL << 0)
#define SF_W  (1ULL << 1)
#define SF_US (1ULL << 2)
#define SF_A  (1ULL << 5)
#define SF_D  (1ULL << 6)
#define SF_PS (1ULL << 7)
#define SF_GIB (1ULL << 30)

static uint64_t sf_routine(int k)
{
	uint32_t off;
	memcpy(&off, sf_agent_code + SF_OFF_ROUTINES + 4 * k, 4);
	return SF_AGENT_GVA + off;
}

static void sf_build_agent(void)
{
	uint64_t g0 = SF_AGENT_GPA;
	memcpy(sf_agent + SF_OFF_CODE, sf_agent_code, sizeof(sf_agent_code));
	/* GDT (SDM vol. 3A 3.4.5): null, kernel code64, kernel data, user data, user
	 * code64, then the 16-byte TSS descriptor; accessed bits preset. */
	static const uint64_t gdt[5] = {
		0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL, 0x00cff3000000ffffULL,
		0x00affb000000ffffULL,
	};
	for (int i = 0; i < 5; i++)
		sf_agent_put64(SF_OFF_GDT + 8 * i, gdt[i]);
	uint64_t tss = SF_AGENT_GVA + SF_OFF_TSS;
	/* Busy 64-bit TSS, present: access byte 0x8B (SDM vol. 3A 8.2.3). */
	uint64_t tss_low = (0x67ULL & 0xffff) | ((tss & 0xffffff) << 16) | (0x8bULL << 40) |
			   (((tss >> 24) & 0xff) << 56);
	sf_agent_put64(SF_OFF_GDT + 40, tss_low);
	sf_agent_put64(SF_OFF_GDT + 48, tss >> 32);
	/* TSS: RSP0 at offset 4 (ring-3 faults get their own stack), no I/O bitmap. */
	sf_agent_put64(SF_OFF_TSS + 4, SF_AGENT_GVA + SF_OFF_FAULT_STACK_TOP);
	sf_agent_put16(SF_OFF_TSS + 0x66, 0x68);
	/* IDT: 32 interrupt gates (type 0xE, DPL 0, present) to vectors 16 bytes apart. */
	for (int v = 0; v < 32; v++) {
		uint64_t h = SF_AGENT_GVA + SF_OFF_VECTORS + 16 * v;
		uint64_t lo = (h & 0xffff) | ((uint64_t)SF_SEL_KERNEL_CS << 16) | (0x8eULL << 40) |
			      (((h >> 16) & 0xffff) << 48);
		sf_agent_put64(SF_OFF_IDT + 16 * v, lo);
		sf_agent_put64(SF_OFF_IDT + 16 * v + 8, h >> 32);
	}
	sf_agent_put64(SF_OFF_DATA + SF_D_RFLAGS, SF_RFLAGS);
	/* Until the host writes a batch, the first record ends it. */
	sf_agent_put64(SF_OFF_CMD + SF_R_ROUTINE, sf_routine(SF_K_DONE));
	/* The agent's tables: U=1 on the upper levels (the ring-3 stub page needs it), A
	 * and D preset, no NX bits (EFER.NXE belongs to the trace). */
	sf_agent_put64(SF_OFF_ROOT + 8 * SF_AGENT_PML4_INDEX, (g0 + SF_OFF_AGENT_PDPT) | SF_P | SF_W | SF_US | SF_A);
	sf_agent_put64(SF_OFF_ROOT + 8 * SF_DIRECT_PML4_INDEX, (g0 + SF_OFF_DIRECT_PDPT) | SF_P | SF_W | SF_A);
	sf_agent_put64(SF_OFF_AGENT_PDPT, (g0 + SF_OFF_AGENT_PD) | SF_P | SF_W | SF_US | SF_A);
	sf_agent_put64(SF_OFF_AGENT_PD, (g0 + SF_OFF_AGENT_PT) | SF_P | SF_W | SF_US | SF_A);
	for (unsigned i = 0; i < SF_AGENT_MAPPED_PAGES; i++) {
		uint64_t u = i * 4096 == SF_OFF_USER ? SF_US : 0;
		sf_agent_put64(SF_OFF_AGENT_PT + 8 * i, (g0 + i * 4096ULL) | SF_P | SF_W | SF_A | SF_D | u);
	}
	/* The direct map: gpa g at DIRECT_GVA + g, 2 MiB pages up to the limit, except the
	 * agent region. */
	uint64_t pds = (sf_direct_limit + SF_GIB - 1) / SF_GIB;
	uint64_t agent_lo = SF_AGENT_GPA >> 21, agent_hi = (SF_AGENT_GPA + SF_AGENT_GPA_SIZE) >> 21;
	uint64_t limit2m = sf_direct_limit >> 21;
	for (uint64_t j = 0; j < pds; j++) {
		sf_agent_put64(SF_OFF_DIRECT_PDPT + 8 * j, (g0 + SF_OFF_DIRECT_PD + 4096 * j) | SF_P | SF_W | SF_A);
		for (uint64_t k = 0; k < 512; k++) {
			uint64_t n = j * 512 + k;
			if (n >= limit2m || (n >= agent_lo && n < agent_hi))
				continue;
			sf_agent_put64(SF_OFF_DIRECT_PD + 4096 * j + 8 * k,
				       (n << 21) | SF_P | SF_W | SF_A | SF_D | SF_PS);
		}
	}
	sf_agent_entries[0] = sf_agent64(SF_OFF_ROOT + 8 * SF_DIRECT_PML4_INDEX);
	sf_agent_entries[1] = sf_agent64(SF_OFF_ROOT + 8 * SF_AGENT_PML4_INDEX);
	for (int k = 0; k < SF_ROUTINE_COUNT; k++)
		sf_routines[k] = sf_routine(k);
}

/* vm.ts filterCpuid: vendor string, MAXPHYADDR, Page1GB, SMEP/SMAP, no PCID/PKU/LA57,
 * no vPMU when pmu.version is 0 (SDM vol. 2A CPUID; AMD APM vol. 3 appendix E). */
static uint32_t sf_bit(uint32_t x, int bit, int on)
{
	return on ? x | (1U << bit) : x & ~(1U << bit);
}

static void sf_filter_cpuid(struct kvm_cpuid2 *c)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 0) {
			e->ebx = SF_VENDOR_EBX;
			e->edx = SF_VENDOR_EDX;
			e->ecx = SF_VENDOR_ECX;
		} else if (e->function == 1) {
			e->ecx = sf_bit(e->ecx, 17, 0); /* PCID */
		} else if (e->function == 7 && e->index == 0) {
			e->ebx = sf_bit(sf_bit(e->ebx, 7, SF_FEATURE_SMEP), 20, SF_FEATURE_SMAP);
			e->ecx = sf_bit(sf_bit(e->ecx, 3, 0), 16, 0); /* PKU, LA57 */
		} else if (e->function == 0xa && SF_PMU_VERSION == 0) {
			e->eax = e->ebx = e->ecx = e->edx = 0;
		} else if (e->function == 0x80000001) {
			e->edx = sf_bit(e->edx, 26, SF_GB_PAGES); /* Page1GB */
			if (SF_PMU_VERSION == 0)
				e->ecx = sf_bit(e->ecx, 23, 0); /* PerfCtrExtCore */
		} else if (e->function == 0x80000008) {
			e->eax = (e->eax & ~0xffU) | SF_MAXPHYADDR;
		} else if (e->function == 0x80000022 && SF_PMU_VERSION == 0) {
			e->eax = 0; /* PerfMonV2 */
			e->ebx = 0;
		}
	}
}

static void sf_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t sys, uint8_t dpl,
		   uint8_t l, uint8_t db)
{
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = dpl;
	s->db = db;
	s->s = sys;
	s->l = l;
	s->g = 1;
	s->unusable = 0;
}

/* vm.ts #setSregs: straight into 64-bit mode on the agent's root. */
static void sf_long_mode(struct kvm_sregs *s)
{
	sf_seg(&s->cs, SF_SEL_KERNEL_CS, 0xb, 1, 0, 1, 0);
	sf_seg(&s->ds, SF_SEL_KERNEL_DS, 0x3, 1, 0, 0, 1);
	sf_seg(&s->es, SF_SEL_KERNEL_DS, 0x3, 1, 0, 0, 1);
	sf_seg(&s->fs, SF_SEL_KERNEL_DS, 0x3, 1, 0, 0, 1);
	sf_seg(&s->gs, SF_SEL_KERNEL_DS, 0x3, 1, 0, 0, 1);
	sf_seg(&s->ss, SF_SEL_KERNEL_DS, 0x3, 1, 0, 0, 1);
	sf_seg(&s->tr, SF_SEL_TSS, 0xb, 0, 0, 0, 0);
	s->tr.base = SF_AGENT_GVA + SF_OFF_TSS;
	s->tr.limit = 0x67;
	s->tr.g = 0;
	s->ldt.selector = 0;
	s->ldt.present = 0;
	s->ldt.unusable = 1;
	s->ldt.type = 2;
	s->gdt.base = SF_AGENT_GVA + SF_OFF_GDT;
	s->gdt.limit = 7 * 8 - 1;
	s->idt.base = SF_AGENT_GVA + SF_OFF_IDT;
	s->idt.limit = 32 * 16 - 1;
	s->cr0 = SF_CR0;
	s->cr3 = SF_AGENT_GPA + SF_OFF_ROOT;
	s->cr4 = SF_CR4;
	s->efer = SF_EFER;
}

/* ---- the watchdog ------------------------------------------------------------- */

/* alarm() per batch (vm.ts armWatchdog's bound, in whole seconds): SIGALRM sets
 * immediate_exit, so KVM_RUN returns -EINTR whether the signal lands during the run or
 * just before it (api.rst, KVM_RUN immediate_exit). A second SIGALRM while KVM_RUN still
 * does not return ends the process. */
static void sf_on_alarm(int sig)
{
	(void)sig;
	sf_alarms++;
	if (sf_run != NULL)
		sf_run->immediate_exit = 1;
	if (sf_alarms >= 2) {
		static const char m[] = "shadowfuzz repro: KVM_RUN did not return after the watchdog signal\n";
		if (write(2, m, sizeof(m) - 1) < 0)
			_exit(1);
		_exit(1);
	}
	alarm(2);
}

static void sf_watchdog_setup(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sf_on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must see -EINTR */
	sigaction(SIGALRM, &sa, NULL);
	const char *env = getenv("SHADOWFUZZ_KVM_WATCHDOG_MS");
	if (env != NULL && *env != 0) {
		char *end;
		unsigned long v = strtoul(env, &end, 10);
		if (*end != 0 || v < 1 || v > 3600000)
			sf_cannot("Cannot use SHADOWFUZZ_KVM_WATCHDOG_MS: expected whole milliseconds from 1 to 3600000, got \"%s\"", env);
		sf_watchdog_ms = (unsigned)v;
	}
}

static void sf_arm(unsigned ms)
{
	sf_alarms = 0;
	sf_run->immediate_exit = 0;
	alarm((ms + 999) / 1000);
}

static void sf_disarm(void)
{
	alarm(0);
	/* A SIGALRM after the batch ended must not end the next one. */
	sf_alarms = 0;
	sf_run->immediate_exit = 0;
}

/* ---- KVM_RUN (vm.ts run) ------------------------------------------------------- */

enum { SF_EXIT_DONE, SF_EXIT_MMIO, SF_EXIT_FATAL, SF_EXIT_TIMEOUT };
struct sf_exit {
	int kind;
	uint64_t gpa;
	int write;
	int record_ok;     /* KVM_GET_REGS worked: record is the agent's r12 */
	uint64_t record;
	char message[256];
};

static void sf_r12(struct sf_exit *e)
{
	struct kvm_regs r;
	e->record_ok = sf_get_regs(&r) == 0;
	e->record = e->record_ok ? r.r12 : 0;
}

static void sf_rip(char *buf, size_t n)
{
	struct kvm_regs r;
	if (sf_get_regs(&r) == 0)
		snprintf(buf, n, "0x%llx", (unsigned long long)r.rip);
	else
		snprintf(buf, n, "0x-1");
}

static void sf_vm_run(struct sf_exit *e)
{
	memset(e, 0, sizeof(*e));
	for (;;) {
		int r = sf_run_vcpu();
		if (r < 0) {
			if (-r == EINTR) {
				if (sf_alarms > 0) {
					e->kind = SF_EXIT_TIMEOUT;
					sf_r12(e);
					return;
				}
				continue;
			}
			if (-r == EAGAIN)
				continue;
			e->kind = SF_EXIT_FATAL;
			snprintf(e->message, sizeof(e->message), "KVM_RUN: %s", sf_errno_name(-r));
			sf_r12(e);
			return;
		}
		uint32_t reason = sf_run->exit_reason;
		if (reason == KVM_EXIT_IO && sf_run->io.port == SF_EXIT_PORT) {
			e->kind = SF_EXIT_DONE;
			return;
		}
		if (reason == KVM_EXIT_MMIO) {
			e->kind = SF_EXIT_MMIO;
			e->gpa = sf_run->mmio.phys_addr;
			e->write = sf_run->mmio.is_write != 0;
			/* Reads complete with zeros when KVM_RUN is re-entered. */
			if (!e->write)
				memset(sf_run->mmio.data, 0, 8);
			sf_r12(e);
			return;
		}
		if (reason == KVM_EXIT_INTR)
			continue;
		const char *name = NULL;
		char nbuf[32];
		for (size_t i = 0; i < sizeof(sf_exit_names) / sizeof(sf_exit_names[0]); i++)
			if ((uint32_t)sf_exit_names[i].n == reason)
				name = sf_exit_names[i].name;
		if (name == NULL) {
			snprintf(nbuf, sizeof(nbuf), "exit reason %u", reason);
			name = nbuf;
		}
		char detail[64] = "";
		if (reason == KVM_EXIT_INTERNAL_ERROR)
			snprintf(detail, sizeof(detail), " suberror %u", sf_run->internal.suberror);
		if (reason == KVM_EXIT_FAIL_ENTRY)
			snprintf(detail, sizeof(detail), " reason 0x%llx",
				 (unsigned long long)sf_run->fail_entry.hardware_entry_failure_reason);
		if (reason == KVM_EXIT_IO)
			snprintf(detail, sizeof(detail), " port 0x%x", sf_run->io.port);
		char rip[32];
		sf_rip(rip, sizeof(rip));
		e->kind = SF_EXIT_FATAL;
		snprintf(e->message, sizeof(e->message), "%s%s at rip %s", name, detail, rip);
		sf_r12(e);
		return;
	}
}

/* vm.ts setCr3: the host loads CR3, after completing the pending exit. NULL or why not. */
static const char *sf_set_cr3(uint64_t value)
{
	static char why[128];
	sf_run->immediate_exit = 1;
	int r = sf_run_vcpu();
	sf_run->immediate_exit = 0;
	if (r >= 0 || -r != EINTR) {
		snprintf(why, sizeof(why), "Cannot complete the pending exit: %s", sf_errno_name(-r));
		return why;
	}
	struct kvm_sregs s;
	int e = sf_get_sregs(&s);
	if (e != 0) {
		snprintf(why, sizeof(why), "Cannot set up the KVM guest: KVM_GET_SREGS: %s", sf_errno_name(e));
		return why;
	}
	s.cr3 = value;
	e = sf_set_sregs(&s);
	if (e != 0) {
		snprintf(why, sizeof(why), "Cannot set up the KVM guest: KVM_SET_SREGS: %s", sf_errno_name(e));
		return why;
	}
	return NULL;
}

/* ---- slots and roots (backend.ts) ---------------------------------------------- */

static struct sf_slot *sf_slot_find(uint32_t id)
{
	for (int i = 0; i < sf_nslots; i++)
		if (sf_slots[i].id == id)
			return &sf_slots[i];
	return NULL;
}

/* A JS Map's set: an existing id keeps its place. */
static void sf_slot_set(uint32_t id, uint64_t gpa, uint64_t pages, uint64_t host)
{
	struct sf_slot *s = sf_slot_find(id);
	if (s == NULL) {
		if (sf_nslots == SF_MAX_SLOTS)
			sf_cannot("too many memslots for this reproducer");
		s = &sf_slots[sf_nslots++];
	}
	s->id = id;
	s->gpa = gpa;
	s->pages = pages;
	s->host = host;
}

static void sf_slot_delete(uint32_t id)
{
	for (int i = 0; i < sf_nslots; i++) {
		if (sf_slots[i].id == id) {
			memmove(&sf_slots[i], &sf_slots[i + 1], (sf_nslots - i - 1) * sizeof(sf_slots[0]));
			sf_nslots--;
			return;
		}
	}
}

/* The host address of the page holding gpa (address space 0), inside the window. */
static uint64_t sf_host_page(uint64_t gpa)
{
	for (int i = 0; i < sf_nslots; i++) {
		const struct sf_slot *s = &sf_slots[i];
		if (s->id >> 16 != 0)
			continue;
		if (gpa >= s->gpa && gpa - s->gpa < s->pages * 4096) {
			uint64_t host = s->host + ((gpa - s->gpa) & ~0xfffULL);
			uint64_t lo = sf_window_base, hi = lo + (SF_HVA_WINDOW_END - SF_HVA_WINDOW_START);
			return host >= lo && host < hi ? host : SF_NONE;
		}
	}
	return SF_NONE;
}

static uint64_t sf_root_page(void)
{
	return sf_host_page(sf_trace_cr3 & 0x000ffffffffff000ULL);
}

static struct sf_installed *sf_inst_find(uint64_t page)
{
	for (int i = 0; i < sf_ninst; i++)
		if (sf_inst[i].page == page)
			return &sf_inst[i];
	return NULL;
}

/* Puts the agent's PML4 entries into a root page, saving the trace's bytes. */
static void sf_install(uint64_t page)
{
	uint64_t at = page + SF_ROOT_BYTES;
	uint64_t cur0 = sf_get64(at), cur1 = sf_get64(at + 8);
	struct sf_installed *in = sf_inst_find(page);
	if (cur0 == sf_agent_entries[0] && cur1 == sf_agent_entries[1] && in != NULL)
		return;
	if (in == NULL) {
		if (sf_ninst == (int)(sizeof(sf_inst) / sizeof(sf_inst[0])))
			sf_cannot("too many root pages for this reproducer");
		in = &sf_inst[sf_ninst++];
		in->page = page;
	}
	in->saved[0] = cur0;
	in->saved[1] = cur1;
	sf_put64(at, sf_agent_entries[0]);
	sf_put64(at + 8, sf_agent_entries[1]);
}

/* Restores the trace's bytes in every installed page but keep. */
static void sf_restore_except(uint64_t keep)
{
	int n = 0;
	for (int i = 0; i < sf_ninst; i++) {
		struct sf_installed in = sf_inst[i];
		if (in.page == keep) {
			sf_inst[n++] = in;
			continue;
		}
		uint64_t at = in.page + SF_ROOT_BYTES;
		if (sf_get64(at) == sf_agent_entries[0] && sf_get64(at + 8) == sf_agent_entries[1]) {
			sf_put64(at, in.saved[0]);
			sf_put64(at + 8, in.saved[1]);
		}
	}
	sf_ninst = n;
}

/* backend.ts #walkReachesAgent: the walk of gva reads the root page's bytes 0xff0-0xfff. */
static int sf_walk_reaches_agent(uint64_t gva, uint32_t size)
{
	uint64_t root = sf_root_page();
	if (root == SF_NONE)
		return 0;
	const uint64_t addr_mask = 0x000ffffffffff000ULL;
	uint64_t table = sf_trace_cr3 & addr_mask;
	for (int level = 4; level >= 1; level--) {
		unsigned shift = 12 + 9 * (level - 1);
		unsigned index = (unsigned)((gva >> shift) & 0x1ff);
		uint64_t host = sf_host_page(table);
		if (host == SF_NONE)
			return 0;
		if (host == root && index >= SF_DIRECT_PML4_INDEX)
			return 1;
		uint64_t entry = sf_get64(host + index * 8);
		if ((entry & 1) == 0)
			return 0;
		int leaf = level == 1 || (level <= 3 && (entry & 0x80) != 0);
		if (leaf) {
			uint64_t page_mask = (1ULL << shift) - 1;
			uint64_t gpa = (entry & addr_mask & ~page_mask) | (gva & page_mask);
			uint64_t frame = sf_host_page(gpa);
			return frame == root && (gpa & 0xfff) + size > SF_ROOT_BYTES;
		}
		table = entry & addr_mask;
	}
	return 0;
}

/* backend.ts supports(): the state-dependent refusals; NULL or why. */
static const char *sf_state_violation(const struct sf_op *op)
{
	static char why[256];
	if (op->check == SF_CHECK_PHYS) {
		uint64_t page = sf_host_page(op->check_addr);
		if (page != SF_NONE && page == sf_root_page() &&
		    (op->check_addr & 0xfff) + op->check_size > SF_ROOT_BYTES) {
			snprintf(why, sizeof(why),
				 "kvm: %s at 0x%llx touches PML4 entries 510-511 of the current root, which the agent owns",
				 op->check_what, (unsigned long long)op->check_addr);
			return why;
		}
	} else if (op->check == SF_CHECK_WALK && sf_walk_reaches_agent(op->check_addr, op->check_size)) {
		snprintf(why, sizeof(why),
			 "kvm: the walk of 0x%llx uses the current root page as a lower table or frame and "
			 "reaches its bytes 0xff0-0xfff (the agent's PML4 entries 510-511)",
			 (unsigned long long)op->check_addr);
		return why;
	}
	return NULL;
}

/* ---- batches (backend.ts #flush) ----------------------------------------------- */

static void sf_result(unsigned rec, struct sf_out *o)
{
	unsigned at = SF_OFF_CMD + SF_REC_SIZE * rec;
	uint32_t status = sf_agent32(at + SF_R_STATUS);
	if (status == SF_S_OK) {
		o->kind = SF_O_OK;
	} else if (status == SF_S_VALUE) {
		o->kind = SF_O_VALUE;
		o->a = sf_agent64(at + SF_R_RESULT);
	} else if (status == SF_S_EXCEPTION) {
		uint32_t vector = sf_agent32(at + SF_R_VECTOR);
		if (vector == 14) {
			o->kind = SF_O_PF;
			o->a = sf_agent64(at + SF_R_ERROR) & 0xffffffffULL;
			o->b = sf_agent64(at + SF_R_CR2);
		} else if (vector == 13) {
			o->kind = SF_O_GP;
		} else {
			sf_crash(o, "kvm: unexpected exception vector %u at rip 0x%llx", vector,
				 (unsigned long long)sf_agent64(at + SF_R_RESULT));
		}
	} else {
		sf_crash(o, "kvm: the agent left status %u", status);
	}
}

/* JSON.stringify of an outcome (with hex bigints), for the CR3-switch death message. */
static void sf_json(const struct sf_out *o, char *buf, size_t n)
{
	switch (o->kind) {
	case SF_O_OK: snprintf(buf, n, "{\"ok\":true}"); break;
	case SF_O_GP: snprintf(buf, n, "{\"gp\":true}"); break;
	case SF_O_VALUE: snprintf(buf, n, "{\"value\":\"0x%llx\"}", (unsigned long long)o->a); break;
	case SF_O_MMIO:
		snprintf(buf, n, "{\"mmio\":{\"gpa\":\"0x%llx\",\"write\":%s}}", (unsigned long long)o->a,
			 o->b ? "true" : "false");
		break;
	case SF_O_PF:
		snprintf(buf, n, "{\"pf\":{\"code\":%llu,\"cr2\":\"0x%llx\"}}", (unsigned long long)o->a,
			 (unsigned long long)o->b);
		break;
	default: snprintf(buf, n, "{\"crash\":\"%.300s\"}", o->msg); break;
	}
}

static void sf_die(const char *message)
{
	if (sf_dead[0] != 0)
		return;
	snprintf(sf_dead, sizeof(sf_dead), "%s", message);
}

static void sf_push(int op, int routine, uint64_t addr, uint64_t value, uint64_t aux, uint32_t status)
{
	struct sf_cmd c = { op, routine, addr, value, aux, status };
	sf_batch[sf_nbatch++] = c;
}

static void sf_write_record(unsigned n, const struct sf_cmd *c)
{
	unsigned o = SF_OFF_CMD + SF_REC_SIZE * n;
	sf_agent_put64(o + SF_R_ROUTINE, sf_routines[c->routine]);
	sf_agent_put64(o + SF_R_ADDR, c->addr);
	sf_agent_put64(o + SF_R_VALUE, c->value);
	sf_agent_put64(o + SF_R_AUX, c->aux);
	sf_agent_put32(o + SF_R_STATUS, c->status);
}

/* Runs the pending commands in one KVM_RUN (plus MMIO round trips); the outcome of
 * the op's record goes to *out. */
static void sf_flush(struct sf_out *out)
{
	if (sf_nbatch == 0)
		return;
	struct sf_cmd b[16];
	int n = 0;
	/* The prologue: back onto the trace's root once a slot backs it again. */
	uint64_t page = sf_root_page();
	if (page != SF_NONE) {
		sf_install(page);
		if (sf_vcpu_cr3 != sf_trace_cr3) {
			sf_vcpu_cr3 = sf_trace_cr3;
			struct sf_cmd c = { -1, SF_K_CR3, sf_trace_cr3, 0, 0, SF_S_OK };
			b[n++] = c;
		}
	}
	for (int i = 0; i < sf_nbatch; i++)
		b[n++] = sf_batch[i];
	sf_nbatch = 0;
	for (int i = 0; i < n; i++)
		sf_write_record(i, &b[i]);
	struct sf_cmd done = { -1, SF_K_DONE, 0, 0, 0, SF_S_OK };
	sf_write_record(n, &done);
	int mm_has[16] = { 0 }, mm_write[16] = { 0 };
	uint64_t mm_gpa[16] = { 0 };
	const uint64_t first = SF_AGENT_GVA + SF_OFF_CMD;
	int fatal = 0, fatal_at = 0;
	char fatal_msg[300] = "";
	unsigned bound = sf_watchdog_ms * (unsigned)((n + SF_KVM_WATCHDOG_OPS - 1) / SF_KVM_WATCHDOG_OPS);
	if (bound < sf_watchdog_ms)
		bound = sf_watchdog_ms;
	sf_arm(bound);
	for (;;) {
		struct sf_exit e;
		sf_vm_run(&e);
		if (e.kind == SF_EXIT_DONE)
			break;
		/* The record the agent's r12 points at (truncating division, as BigInt's). */
		__int128 d = (e.record_ok ? (__int128)e.record : (__int128)-1) - (__int128)first;
		__int128 rec = d / SF_REC_SIZE;
		if (e.kind == SF_EXIT_MMIO) {
			if (rec >= 0 && rec < 16 && !mm_has[(int)rec]) {
				mm_has[(int)rec] = 1;
				mm_gpa[(int)rec] = e.gpa;
				mm_write[(int)rec] = e.write;
			}
			continue;
		}
		fatal = 1;
		if (e.kind == SF_EXIT_TIMEOUT)
			snprintf(fatal_msg, sizeof(fatal_msg), "guest did not exit within %u ms: KVM_RUN watchdog", bound);
		else
			snprintf(fatal_msg, sizeof(fatal_msg), "%s", e.message);
		fatal_at = rec >= 0 && rec <= n ? ((int)rec < n - 1 ? (int)rec : n - 1) : 0;
		break;
	}
	sf_disarm();
	/* The crash goes to a trace op: the first at or after the failing record, else the
	 * last one before it. */
	int crash_at = -1;
	if (fatal) {
		for (int k = 0; k < n && crash_at < 0; k++)
			if (k >= fatal_at && b[k].op >= 0)
				crash_at = k;
		for (int k = n - 1; k >= 0 && crash_at < 0; k--)
			if (b[k].op >= 0)
				crash_at = k;
		if (crash_at < 0)
			crash_at = n;
	}
	char death[700] = "";
	if (fatal)
		snprintf(death, sizeof(death), "%s", fatal_msg);
	for (int k = 0; k < n; k++) {
		const struct sf_cmd *c = &b[k];
		struct sf_out o;
		memset(&o, 0, sizeof(o));
		if (c->op < 0) {
			/* An internal CR3 switch: its failure kills the VM. */
			if (!fatal && death[0] == 0) {
				if (mm_has[k]) {
					o.kind = SF_O_MMIO;
					o.a = mm_gpa[k];
					o.b = (uint64_t)mm_write[k];
				} else {
					sf_result(k, &o);
				}
				if (o.kind != SF_O_OK) {
					char j[400];
					sf_json(&o, j, sizeof(j));
					snprintf(death, sizeof(death), "the agent's CR3 switch failed: %s", j);
				}
			}
			continue;
		}
		if (fatal && k >= crash_at) {
			if (k == crash_at)
				sf_crash(&o, "kvm: %s", fatal_msg);
			else
				sf_crash(&o, "kvm: the VM is dead: %s", fatal_msg);
		} else if (mm_has[k]) {
			o.kind = SF_O_MMIO;
			o.a = mm_gpa[k];
			o.b = (uint64_t)mm_write[k];
		} else {
			sf_result(k, &o);
		}
		if (c->routine == SF_K_CR3 && o.kind == SF_O_OK)
			sf_vcpu_cr3 = sf_trace_cr3 = c->addr;
		*out = o;
	}
	if (death[0] != 0)
		sf_die(death);
	if (sf_dead[0] != 0)
		return;
	sf_restore_except(sf_vcpu_cr3 == sf_trace_cr3 ? sf_root_page() : SF_NONE);
}

/* backend.ts #leaveDeadRoot: after a memslot change, off a root no slot backs. */
static const char *sf_leave_dead_root(void)
{
	if (sf_dead[0] != 0)
		return NULL;
	uint64_t page = sf_root_page();
	uint64_t agent_root = SF_AGENT_GPA + SF_OFF_ROOT;
	if (page == SF_NONE && sf_vcpu_cr3 != agent_root) {
		const char *why = sf_set_cr3(agent_root);
		if (why != NULL)
			return why;
		sf_vcpu_cr3 = agent_root;
	}
	sf_restore_except(sf_vcpu_cr3 == sf_trace_cr3 ? page : SF_NONE);
	return NULL;
}

/* backend.ts #cr3: MOV CR3, alone in its KVM_RUN when the root page changes. */
static void sf_cr3(int i, uint64_t value, struct sf_out *out)
{
	uint64_t high = value >> SF_MAXPHYADDR;
	uint64_t page = sf_host_page(value & ~0xfffULL & 0x000ffffffffff000ULL);
	int same_root = sf_vcpu_cr3 == sf_trace_cr3 && (value & ~0xfffULL) == (sf_trace_cr3 & ~0xfffULL);
	if (high != 0 || same_root) {
		sf_push(i, SF_K_CR3, value, 0, 0, SF_S_OK);
		return;
	}
	if (page == SF_NONE) {
		sf_trace_cr3 = value;
		out->kind = SF_O_OK;
		sf_push(-1, SF_K_CR3, SF_AGENT_GPA + SF_OFF_ROOT, 0, 0, SF_S_OK);
		sf_vcpu_cr3 = SF_AGENT_GPA + SF_OFF_ROOT;
		struct sf_out ignored;
		sf_flush(&ignored);
		return;
	}
	sf_install(page);
	sf_push(i, SF_K_CR3, value, 0, 0, SF_S_OK);
	sf_flush(out);
}

static void sf_errno_out(struct sf_out *o, int e)
{
	static char bufs[4][24];
	static int next;
	o->kind = SF_O_ERRNO;
	o->name = sf_errno_outcome(e, bufs[next]);
	next = (next + 1) % 4;
}

/* KVM_GET_DIRTY_LOG as runs of dirty pages below pages (vm.ts getDirtyLog). */
static void sf_dirty_log(uint32_t slot, uint64_t pages, struct sf_out *o)
{
	uint64_t words = pages == 0 ? 1 : (pages + 63) / 64;
	uint64_t *bits = calloc(words, 8);
	if (bits == NULL)
		sf_cannot("out of memory for a dirty bitmap of %llu pages", (unsigned long long)pages);
	struct kvm_dirty_log log;
	memset(&log, 0, sizeof(log));
	log.slot = slot;
	log.dirty_bitmap = bits;
	int e = sf_get_dirty_log(&log);
	if (e != 0) {
		free(bits);
		sf_errno_out(o, e);
		return;
	}
	size_t cap = 16, n = 0;
	uint64_t (*runs)[2] = malloc(cap * sizeof(*runs));
	for (uint64_t w = 0; w < words; w++) {
		uint64_t x = bits[w];
		while (x != 0) {
			uint64_t page = 64 * w + (uint64_t)__builtin_ctzll(x);
			x &= x - 1;
			if (page >= pages)
				break;
			if (n > 0 && runs[n - 1][1] == page - 1) {
				runs[n - 1][1] = page;
			} else {
				if (n == cap)
					runs = realloc(runs, (cap *= 2) * sizeof(*runs));
				runs[n][0] = runs[n][1] = page;
				n++;
			}
		}
	}
	free(bits);
	o->kind = SF_O_BITMAP;
	o->runs = runs;
	o->nruns = n;
}

/* One op, as KvmBackend.step runs it. */
static void sf_step(const struct sf_op *op, struct sf_out *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = SF_O_NONE;
	if (sf_dead[0] != 0) {
		sf_crash(out, "kvm: the VM is dead: %s", sf_dead);
		return;
	}
	switch (op->kind) {
	case SF_OP_GUEST: {
		uint64_t aux = op->aux_routine >= 0 ? sf_routines[op->aux_routine] : op->aux;
		sf_push(op->index, op->routine, op->addr, op->value, aux, op->status);
		break;
	}
	case SF_OP_CR3:
		sf_cr3(op->index, op->addr, out);
		break;
	case SF_OP_SLOT: {
		uint64_t host = op->in_window ? sf_window_base + op->win_off : op->hva;
		int e = sf_set_region(op->id, op->flags, op->gpa, op->size, host);
		if (e == 0) {
			if (op->pages == 0)
				sf_slot_delete(op->id);
			else
				sf_slot_set(op->id, op->gpa, op->pages, host);
		}
		sf_errno_out(out, e);
		const char *why = sf_leave_dead_root();
		if (why != NULL)
			sf_crash(out, "kvm: %s", why);
		break;
	}
	case SF_OP_DIRTYLOG: {
		struct sf_slot *s = sf_slot_find(op->id);
		sf_dirty_log(op->id, s != NULL ? s->pages : 1, out);
		break;
	}
	case SF_OP_DISCARD:
		if (!op->discard_in) {
			out->kind = SF_O_OK;
		} else if (madvise((void *)(uintptr_t)(sf_window_base + op->discard_off), op->discard_len,
				   MADV_DONTNEED) != 0) {
			/* backend.ts #discard: the errno's name, else its number. */
			int e = errno;
			const char *name = sf_errno_name(e);
			char num[16];
			if (strncmp(name, "errno ", 6) == 0) {
				snprintf(num, sizeof(num), "%d", e);
				name = num;
			}
			sf_crash(out, "kvm: madvise(MADV_DONTNEED): %s", name);
		} else {
			out->kind = SF_O_OK;
		}
		break;
	case SF_OP_FILTER: {
		size_t bytes = sizeof(struct kvm_pmu_event_filter) + 8 * op->nevents;
		struct kvm_pmu_event_filter *f = calloc(1, bytes);
		f->action = op->action;
		f->nevents = op->nevents;
		f->fixed_counter_bitmap = op->fixed;
		f->flags = op->fflags;
		for (uint32_t k = 0; k < op->nevents; k++)
			f->events[k] = sf_events[op->events_first + k];
		sf_errno_out(out, sf_set_pmu_filter(f));
		free(f);
		break;
	}
	}
	sf_flush(out);
	if (out->kind == SF_O_NONE)
		sf_crash(out, "kvm: no outcome");
}

/* ---- the judge (src/trace/outcome.ts matchesPermitted) ------------------------- */

static int sf_in_runs(int first, int count, uint64_t page)
{
	int lo = 0, hi = count;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (sf_runs[first + mid][1] < page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < count && sf_runs[first + lo][0] <= page;
}

static int sf_observed_has(const struct sf_out *o, uint64_t page)
{
	size_t lo = 0, hi = o->nruns;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (o->runs[mid][1] < page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < o->nruns && o->runs[lo][0] <= page;
}

/* The same pages outside the don't-care ones (pages.ts samePagesOutside). */
static int sf_pages_match(const struct sf_perm *p, const struct sf_out *o)
{
	for (size_t r = 0; r < o->nruns; r++)
		for (uint64_t pg = o->runs[r][0]; pg <= o->runs[r][1]; pg++)
			if (!sf_in_runs(p->runs_first, p->runs_count, pg) && !sf_in_runs(p->dc_first, p->dc_count, pg))
				return 0;
	for (int r = 0; r < p->runs_count; r++)
		for (uint64_t pg = sf_runs[p->runs_first + r][0]; pg <= sf_runs[p->runs_first + r][1]; pg++)
			if (!sf_observed_has(o, pg) && !sf_in_runs(p->dc_first, p->dc_count, pg))
				return 0;
	return 1;
}

static int sf_matches(const struct sf_perm *p, const struct sf_out *o)
{
	if (p->kind != o->kind)
		return 0;
	switch (p->kind) {
	case SF_O_VALUE: return ((p->a ^ o->a) & ~p->dont_care) == 0;
	case SF_O_BITMAP:
	case SF_O_YOUNG: return sf_pages_match(p, o);
	case SF_O_ERRNO: return strcmp(p->name, o->name) == 0;
	case SF_O_OK:
	case SF_O_GP: return 1;
	case SF_O_COUNT: return p->a == o->a;
	case SF_O_MMIO: return p->a == o->a && p->b == o->b;
	case SF_O_PF: return p->a == o->a && p->b == o->b;
	default: return 0; /* a crash is never permitted */
	}
}

/* formatOutcome (src/trace/text.ts). */
static void sf_format(const struct sf_out *o, char *buf, size_t n)
{
	switch (o->kind) {
	case SF_O_ERRNO: snprintf(buf, n, "errno %s", o->name); break;
	case SF_O_OK: snprintf(buf, n, "ok"); break;
	case SF_O_GP: snprintf(buf, n, "gp"); break;
	case SF_O_VALUE: snprintf(buf, n, "value 0x%llx", (unsigned long long)o->a); break;
	case SF_O_MMIO:
		snprintf(buf, n, "mmio 0x%llx %s", (unsigned long long)o->a, o->b ? "w" : "r");
		break;
	case SF_O_PF:
		snprintf(buf, n, "pf code=0x%llx cr2=0x%llx", (unsigned long long)o->a, (unsigned long long)o->b);
		break;
	case SF_O_BITMAP: {
		if (o->nruns == 0) {
			snprintf(buf, n, "bitmap none");
			break;
		}
		size_t at = (size_t)snprintf(buf, n, "bitmap pages ");
		for (size_t r = 0; r < o->nruns && at < n; r++) {
			if (o->runs[r][0] == o->runs[r][1])
				at += (size_t)snprintf(buf + at, n - at, "%s%llu", r ? "," : "",
						       (unsigned long long)o->runs[r][0]);
			else
				at += (size_t)snprintf(buf + at, n - at, "%s%llu-%llu", r ? "," : "",
						       (unsigned long long)o->runs[r][0],
						       (unsigned long long)o->runs[r][1]);
		}
		break;
	}
	case SF_O_CRASH: snprintf(buf, n, "crash %s", o->msg); break;
	default: snprintf(buf, n, "(no outcome)"); break;
	}
}

/* ---- the trace ------------------------------------------------------------------ */

static void sf_report(const struct sf_op *op, const struct sf_out *o, const char *observed,
		      int inconclusive_at)
{
	int crash = o->kind == SF_O_CRASH;
	if (inconclusive_at >= 0) {
		sf_printf("inconclusive (%s): op %d took a permitted outcome the export did not follow, "
			  "so the permitted sets after it may not apply\n", SF_LABEL, inconclusive_at);
	} else if (SF_EXPORT_DIV_INDEX == op->index && strcmp(observed, SF_EXPORT_DIV_OUTCOME) == 0 &&
		   SF_EXPORT_SIGNATURE[0] != 0) {
		if (SF_FINDING_SIGNATURE[0] != 0 && strcmp(SF_EXPORT_SIGNATURE, SF_FINDING_SIGNATURE) != 0)
			sf_printf("reproduces (%s): %s (recorded: %s)\n", SF_LABEL, SF_EXPORT_SIGNATURE,
				  SF_FINDING_SIGNATURE);
		else
			sf_printf("reproduces (%s): %s\n", SF_LABEL, SF_EXPORT_SIGNATURE);
	} else if (SF_FINDING_SIGNATURE[0] != 0) {
		sf_printf("reproduces (%s): a divergence the export did not see (recorded: %s)\n", SF_LABEL,
			  SF_FINDING_SIGNATURE);
	} else {
		sf_printf("reproduces (%s): a divergence the export did not see\n", SF_LABEL);
	}
	sf_printf("  %s at op %d: %s\n", crash ? "crash" : "divergence", op->index, op->text);
	sf_printf("  kvm returned: %s\n", observed);
	for (int k = 0; k < op->perm_count; k++)
		sf_printf("  permitted: %s\n", sf_perms[op->perm_first + k].text);
	if (SF_TITLE[0] != 0)
		sf_printf("  title: %s\n", SF_TITLE);
}

/* Runs every op and judges it; the exit code of the report. */
static int sf_run_trace(void)
{
	static char observed[1 << 16];
	int off_branch = -1;
	char off_note[1200] = "";
	for (int i = 0; i < SF_NOPS; i++) {
		const struct sf_op *op = &sf_ops[i];
		const char *why = sf_state_violation(op);
		if (why != NULL)
			sf_cannot("Cannot run op %d on kvm: %s", op->index, why);
		struct sf_out o;
		sf_step(op, &o);
		sf_format(&o, observed, sizeof(observed));
		if (sf_verbose)
			sf_printf("#%d %s  ->  %s\n", op->index, op->text, observed);
		int m = -1;
		for (int k = 0; k < op->perm_count && m < 0; k++)
			if (sf_matches(&sf_perms[op->perm_first + k], &o))
				m = k;
		if (o.kind == SF_O_CRASH || m < 0) {
			sf_report(op, &o, observed, off_branch);
			free(o.runs);
			return off_branch >= 0 ? SF_INCONCLUSIVE : SF_REPRODUCES;
		}
		int on = m == op->followed;
		if (on && op->committed_known && sf_perms[op->perm_first + m].dont_care != 0)
			on = o.a == op->committed_value;
		if (!on && !op->branch_free && off_branch < 0) {
			off_branch = op->index;
			snprintf(off_note, sizeof(off_note),
				 "  note: op %d returned %.300s, permitted as \"%.300s\", but the export followed \"%.300s\": "
				 "the ops after it were judged on the export's branch\n",
				 op->index, observed, sf_perms[op->perm_first + m].text,
				 sf_perms[op->perm_first + op->followed].text);
		}
		free(o.runs);
	}
	if (SF_FINDING_ID[0] != 0)
		sf_printf("does not reproduce: %s (%s) agrees on kvm now\n", SF_FINDING_ID, SF_FINDING_SIGNATURE);
	else
		sf_printf("agree: reference and kvm agree on all %d ops\n", SF_TRACE_OPS);
	if (off_branch >= 0)
		sf_printf("%s", off_note);
	return SF_AGREES;
}

/* Setup shared by both platforms, after the VM and vCPU exist. */
static void sf_setup(void)
{
	/* The trace hva window: one private, lazily allocated, zero-filled mapping. */
	uint64_t window_len = SF_HVA_WINDOW_END - SF_HVA_WINDOW_START + SF_GIB;
	void *w = mmap(NULL, window_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (w == MAP_FAILED)
		sf_cannot("Cannot set up the KVM guest: mmap: %s", sf_errno_name(errno));
	sf_window_base = ((uint64_t)(uintptr_t)w + SF_GIB - 1) & ~(SF_GIB - 1);
	int e = sf_set_region(SF_AGENT_SLOT, 0, SF_AGENT_GPA, SF_AGENT_MEM_SIZE, sf_agent_host());
	if (e != 0)
		sf_cannot("Cannot set up the KVM guest: agent memslot: %s", sf_errno_name(e));
	sf_set_cpuid_filtered();
	struct kvm_sregs s;
	e = sf_get_sregs(&s);
	if (e != 0)
		sf_cannot("Cannot set up the KVM guest: KVM_GET_SREGS: %s", sf_errno_name(e));
	sf_long_mode(&s);
	e = sf_set_sregs(&s);
	if (e != 0)
		sf_cannot("Cannot set up the KVM guest: KVM_SET_SREGS: %s", sf_errno_name(e));
	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rip = SF_AGENT_GVA + SF_OFF_CODE;
	r.rsp = SF_AGENT_GVA + SF_OFF_LOOP_STACK_TOP;
	r.rflags = SF_RFLAGS;
	e = sf_set_regs(&r);
	if (e != 0)
		sf_cannot("Cannot set up the KVM guest: KVM_SET_REGS: %s", sf_errno_name(e));
	sf_trace_cr3 = 0;
	sf_vcpu_cr3 = SF_AGENT_GPA + SF_OFF_ROOT;
}

/* What the trace's config asks of this host (capabilities.ts kvmConfigMismatch), where
 * some op's permitted outcomes depend on it (plan.ts configNeeds). */
static void sf_check_host(const struct kvm_cpuid2 *c)
{
	int gb = 0, amd = 0, intel = 0;
	for (uint32_t i = 0; i < c->nent; i++) {
		if (c->entries[i].function == 0) {
			amd = c->entries[i].ebx == 0x68747541;   /* "Auth" */
			intel = c->entries[i].ebx == 0x756e6547; /* "Genu" */
		}
		if (c->entries[i].function == 0x80000001)
			gb = (c->entries[i].edx & (1U << 26)) != 0;
	}
	if (SF_NEEDS_GB_PAGES && !gb)
		sf_cannot("kvm: no 1 GiB pages here (supported CPUID 0x80000001 EDX[26] clear)");
	if (SF_NEEDS_PMU) {
		int pmu = 1;
		int fd = open("/sys/module/kvm/parameters/enable_pmu", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			char ch = 0;
			pmu = read(fd, &ch, 1) == 1 && ch == 'Y';
			close(fd);
		}
		if (!pmu)
			sf_cannot("kvm: no vPMU here (kvm.enable_pmu=N)");
		if ((SF_VENDOR_IS_AMD && !amd) || (!SF_VENDOR_IS_AMD && !intel))
			sf_cannot("kvm: the vPMU follows the host vendor (%s), the config says %s",
				  amd ? "amd" : intel ? "intel" : "other", SF_VENDOR_IS_AMD ? "amd" : "intel");
	}
}
`;

/** The libc + <linux/kvm.h> platform (`--format c`). */
export const PLATFORM_C = String.raw`
/* ---- platform: libc and <linux/kvm.h> -------------------------------------- */

static int sf_kvm_fd = -1, sf_vm_fd = -1, sf_vcpu_fd = -1;
static struct kvm_run *sf_run;

#define sf_printf printf
#define SF_AGREES 0
#define SF_REPRODUCES 1
#define SF_INCONCLUSIVE 3
#define SF_CANNOT 4

static void sf_cannot(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "cannot run here: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(SF_CANNOT);
}

static int sf_ioctl(int fd, unsigned long req, void *arg)
{
	int r = ioctl(fd, req, arg);
	return r < 0 ? errno : 0;
}

static int sf_run_vcpu(void) { return ioctl(sf_vcpu_fd, KVM_RUN, 0) < 0 ? -errno : 0; }
static int sf_get_regs(struct kvm_regs *r) { return sf_ioctl(sf_vcpu_fd, KVM_GET_REGS, r); }
static int sf_set_regs(struct kvm_regs *r) { return sf_ioctl(sf_vcpu_fd, KVM_SET_REGS, r); }
static int sf_get_sregs(struct kvm_sregs *s) { return sf_ioctl(sf_vcpu_fd, KVM_GET_SREGS, s); }
static int sf_set_sregs(struct kvm_sregs *s) { return sf_ioctl(sf_vcpu_fd, KVM_SET_SREGS, s); }
static int sf_get_dirty_log(struct kvm_dirty_log *l) { return sf_ioctl(sf_vm_fd, KVM_GET_DIRTY_LOG, l); }
static int sf_set_pmu_filter(struct kvm_pmu_event_filter *f) { return sf_ioctl(sf_vm_fd, KVM_SET_PMU_EVENT_FILTER, f); }

static int sf_set_region(uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size, uint64_t hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size, .userspace_addr = hva,
	};
	return sf_ioctl(sf_vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

/* KVM_GET_SUPPORTED_CPUID (256 entries, as vm.ts asks), checked and filtered. */
static void sf_set_cpuid_filtered(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 256 * sizeof(struct kvm_cpuid_entry2));
	c->nent = 256;
	int e = sf_ioctl(sf_kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
	if (e != 0)
		sf_cannot("Cannot set up the KVM guest: KVM_GET_SUPPORTED_CPUID: %s", sf_errno_name(e));
	sf_check_host(c);
	sf_filter_cpuid(c);
	e = sf_ioctl(sf_vcpu_fd, KVM_SET_CPUID2, c);
	if (e != 0)
		sf_cannot("Cannot set up the KVM guest: KVM_SET_CPUID2: %s", sf_errno_name(e));
	free(c);
}

static void sf_need_cap(long cap, const char *name)
{
	if (ioctl(sf_kvm_fd, KVM_CHECK_EXTENSION, cap) <= 0)
		sf_cannot("KVM lacks %s", name);
}

static void sf_open(void)
{
	sf_kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (sf_kvm_fd < 0)
		sf_cannot("/dev/kvm: %s", errno == ENOENT ? "not present" : errno == EACCES || errno == EPERM ? "permission denied" : sf_errno_name(errno));
	int version = ioctl(sf_kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION)
		sf_cannot("/dev/kvm: KVM API version %d, expected %d", version, KVM_API_VERSION);
	sf_need_cap(KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT");
	if (SF_USES_FILTER)
		sf_need_cap(KVM_CAP_PMU_EVENT_FILTER, "KVM_CAP_PMU_EVENT_FILTER");
	sf_vm_fd = ioctl(sf_kvm_fd, KVM_CREATE_VM, 0);
	if (sf_vm_fd < 0)
		sf_cannot("Cannot set up the KVM guest: KVM_CREATE_VM: %s", sf_errno_name(errno));
	int size = ioctl(sf_kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < 0)
		sf_cannot("Cannot set up the KVM guest: KVM_GET_VCPU_MMAP_SIZE: %s", sf_errno_name(errno));
	/* The agent region before the vCPU, as vm.ts orders it. */
	sf_agent = mmap(NULL, SF_AGENT_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (sf_agent == MAP_FAILED)
		sf_cannot("Cannot set up the KVM guest: mmap: %s", sf_errno_name(errno));
	sf_build_agent();
	sf_vcpu_fd = ioctl(sf_vm_fd, KVM_CREATE_VCPU, 0);
	if (sf_vcpu_fd < 0)
		sf_cannot("Cannot set up the KVM guest: KVM_CREATE_VCPU: %s", sf_errno_name(errno));
	sf_run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, sf_vcpu_fd, 0);
	if (sf_run == MAP_FAILED)
		sf_cannot("Cannot set up the KVM guest: mmap of kvm_run: %s", sf_errno_name(errno));
}
`;

/** `main` of the libc platform. */
export const MAIN_C = String.raw`
static void sf_usage(const char *argv0)
{
	printf("Usage: %s [-v] [--dump-agent FILE]\n"
	       "  Runs the trace on /dev/kvm and judges every op against the reference's\n"
	       "  permitted outcomes embedded in this file.\n"
	       "  -v                 print every op and its outcome\n"
	       "  --dump-agent FILE  write the agent region as built (before any op) and exit\n"
	       "Exit: 0 every op agrees, 1 it reproduces (a divergence or a crash), 3 inconclusive,\n"
	       "4 it cannot run here.\n", argv0);
}

int main(int argc, char **argv)
{
	const char *dump = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-v") == 0) {
			sf_verbose = 1;
		} else if (strcmp(argv[i], "--dump-agent") == 0 && i + 1 < argc) {
			dump = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			sf_usage(argv[0]);
			return 0;
		} else {
			fprintf(stderr, "%s: unknown argument \"%s\"\n", argv[0], argv[i]);
			sf_usage(argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	{
		uint64_t limit = 1ULL << SF_MAXPHYADDR;
		sf_direct_limit = limit < SF_DIRECT_MAP_LIMIT ? limit : SF_DIRECT_MAP_LIMIT;
	}
	if (dump != NULL) {
		sf_agent = mmap(NULL, SF_AGENT_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (sf_agent == MAP_FAILED)
			sf_cannot("mmap: %s", sf_errno_name(errno));
		sf_build_agent();
		FILE *f = fopen(dump, "wb");
		if (f == NULL || fwrite(sf_agent, 1, SF_AGENT_MEM_SIZE, f) != SF_AGENT_MEM_SIZE || fclose(f) != 0) {
			fprintf(stderr, "Cannot write %s: %s\n", dump, strerror(errno));
			return 2;
		}
		return 0;
	}
	sf_watchdog_setup();
	sf_open();
	sf_setup();
	return sf_run_trace();
}
`;

/** The KVM selftest library platform (`--format selftest`). */
export const PLATFORM_SELFTEST = String.raw`
/* ---- platform: the KVM selftest library ------------------------------------ */

static struct kvm_vm *vm;
static struct kvm_vcpu *vcpu;
static struct kvm_run *sf_run;

#define sf_printf pr_info
#define SF_AGREES KSFT_PASS
#define SF_REPRODUCES KSFT_FAIL
#define SF_INCONCLUSIVE KSFT_SKIP
static void sf_cannot(const char *fmt, ...)
{
	char why[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	ksft_exit_skip("%s\n", why);
}

/* The ops whose errno is their outcome go through the library's raw ioctl helpers. */
static int sf_errno_of(int r) { return r < 0 ? errno : 0; }
static int sf_run_vcpu(void) { return __vcpu_run(vcpu) < 0 ? -errno : 0; }
static int sf_get_regs(struct kvm_regs *r) { vcpu_regs_get(vcpu, r); return 0; }
static int sf_set_regs(struct kvm_regs *r) { vcpu_regs_set(vcpu, r); return 0; }
static int sf_get_sregs(struct kvm_sregs *s) { vcpu_sregs_get(vcpu, s); return 0; }
static int sf_set_sregs(struct kvm_sregs *s) { vcpu_sregs_set(vcpu, s); return 0; }
static int sf_get_dirty_log(struct kvm_dirty_log *l) { return sf_errno_of(__vm_ioctl(vm, KVM_GET_DIRTY_LOG, l)); }
static int sf_set_pmu_filter(struct kvm_pmu_event_filter *f) { return sf_errno_of(__vm_ioctl(vm, KVM_SET_PMU_EVENT_FILTER, f)); }

static int sf_set_region(uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size, uint64_t hva)
{
	return sf_errno_of(__vm_set_user_memory_region(vm, slot, flags, gpa, size, (void *)(uintptr_t)hva));
}

/* The supported CPUID, checked against the config and filtered to it. */
static void sf_set_cpuid_filtered(void)
{
	const struct kvm_cpuid2 *sup = kvm_get_supported_cpuid();
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + sup->nent * sizeof(struct kvm_cpuid_entry2));
	TEST_ASSERT(c != NULL, "out of memory for CPUID");
	c->nent = sup->nent;
	memcpy(c->entries, sup->entries, sup->nent * sizeof(struct kvm_cpuid_entry2));
	sf_check_host(c);
	sf_filter_cpuid(c);
	vcpu_ioctl(vcpu, KVM_SET_CPUID2, c);
	free(c);
}

static void sf_open(void)
{
	TEST_REQUIRE(kvm_has_cap(KVM_CAP_IMMEDIATE_EXIT));
	if (SF_USES_FILTER)
		TEST_REQUIRE(kvm_has_cap(KVM_CAP_PMU_EVENT_FILTER));
	/* A VM without the library's memory or guest code: the agent is the guest. */
	vm = vm_create_barebones();
	sf_agent = mmap(NULL, SF_AGENT_MEM_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	TEST_ASSERT(sf_agent != MAP_FAILED, "mmap of the agent region failed");
	sf_build_agent();
	vcpu = __vm_vcpu_add(vm, 0);
	sf_run = vcpu->run;
}
`;

/** `main` of the selftest platform. */
export const MAIN_SELFTEST = String.raw`
static void test_shadowfuzz_trace(void)
{
	uint64_t limit = 1ULL << SF_MAXPHYADDR;
	int r;

	sf_direct_limit = limit < SF_DIRECT_MAP_LIMIT ? limit : SF_DIRECT_MAP_LIMIT;
	sf_watchdog_setup();
	sf_open();
	sf_setup();
	r = sf_run_trace();
	kvm_vm_free(vm);
	if (r == SF_INCONCLUSIVE)
		ksft_exit_skip("inconclusive: an op took a permitted outcome the export did not follow\n");
	TEST_ASSERT(r == SF_AGREES, "KVM diverges from the reference (see above): %s", SF_LABEL);
}

int main(int argc, char *argv[])
{
	sf_verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
	test_shadowfuzz_trace();
	ksft_exit_pass();
}
`;
